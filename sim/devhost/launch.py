"""Starting the firmware (MicroPython unix port) on the virtual board.

`Firmware(host, script)` runs `micropython -X heapsize=… script` with MICROPYPATH =
firmware/ + sim/vboard (+ extra paths) and BRT_DEVHOST pointing at the device host.
`run_firmware(...)` does it once and returns the CompletedProcess; `Firmware.run_forever`
restarts it after machine.reset() or a watchdog expiry, as the ESP32 would reboot.
A power cut is `Firmware.kill()` (SIGKILL: nothing gets to run afterwards).
"""

import os
import pathlib
import subprocess
import sys

from . import wire
from ..mpycache import mpy_dir

ROOT = pathlib.Path(__file__).resolve().parents[2]
MP = str(pathlib.Path(sys.executable).parent / "micropython")
VBOARD = ROOT / "sim" / "vboard"
FIRMWARE = ROOT / "firmware"


def firmware_env(host, paths=(), firmware=FIRMWARE, extra=None):
    env = dict(os.environ)
    # the viper engine precompiled first, as the board gets it (sim/mpycache.py)
    parts = [mpy_dir(firmware), str(firmware), str(VBOARD)] + [str(p) for p in paths]
    env["MICROPYPATH"] = os.pathsep.join(parts + [".frozen"])
    env.update(host.env())
    env.update(extra or {})
    return env


class Firmware:
    def __init__(self, host, args, heap="128K", paths=(), firmware=FIRMWARE, cwd=None,
                 extra_env=None):
        self.host = host
        self.cmd = [MP, "-X", "heapsize=" + heap] + [str(a) for a in args]
        self.env = firmware_env(host, paths, firmware, extra_env)
        self.cwd = str(cwd or ROOT)
        self.proc = None
        self.exits = []

    def start(self, **popen):
        popen.setdefault("stdout", subprocess.PIPE)
        popen.setdefault("stderr", subprocess.PIPE)
        self.proc = subprocess.Popen(self.cmd, env=self.env, cwd=self.cwd, **popen)
        return self.proc

    def wait(self, timeout=None):
        rc = self.host.note_exit(self.proc.wait(timeout))
        self.exits.append(rc)
        return rc

    def kill(self):
        """Power cut: the process ends at whatever instruction it was on."""
        if self.proc is not None and self.proc.poll() is None:
            self.host.wdt_timeout_ms = None  # a power cut is not a watchdog reset
            self.proc.kill()
            self.proc.wait()
            self.exits.append(self.host.note_exit(self.proc.returncode))

    def run_forever(self, max_restarts=None, **popen):
        """Run, and restart after a reset/WDT exit (and after crashes) like a board
        that reboots; returns the last exit code when the firmware exits with 0 or
        max_restarts is used up."""
        n = 0
        while True:
            self.start(**popen)
            rc = self.wait()
            if rc == 0 or (max_restarts is not None and n >= max_restarts):
                return rc
            n += 1


def run_firmware(host, args, timeout=60, **kw):
    """Run once and return a CompletedProcess (text); notes the exit with the host."""
    fw = Firmware(host, args, **kw)
    r = subprocess.run(fw.cmd, env=fw.env, cwd=fw.cwd, capture_output=True, text=True,
                       timeout=timeout)
    r.returncode = host.note_exit(r.returncode)
    return r


EXIT_RESET = wire.EXIT_RESET
EXIT_WDT = wire.EXIT_WDT
