"""`python -m sim.devhost` as a process: prints its address, serves firmware and the JSON
control port; bad arguments give a one-line error and an exit code."""

import json
import socket
import subprocess
import sys

from sim.devhost import run_firmware
from tests.support.mp import ROOT


class Addr:
    def __init__(self, addr):
        self.addr = addr

    def env(self):
        return {"BRT_DEVHOST": self.addr}

    def note_exit(self, rc):
        return rc


def test_devhost_process_and_control_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    cport = s.getsockname()[1]
    s.close()
    p = subprocess.Popen([sys.executable, "-m", "sim.devhost", "--unique-id", "240ac4010203",
                          "--control-port", str(cport)], cwd=ROOT, stdout=subprocess.PIPE,
                         text=True)
    try:
        addr = p.stdout.readline().strip().split("=", 1)[1]
        assert p.stdout.readline().startswith("control port")
        r = run_firmware(Addr(addr), ["-c", "import machine; print(machine.unique_id().hex())"])
        assert r.stdout.strip() == "240ac4010203"
        with socket.create_connection(("127.0.0.1", cport)) as c, c.makefile("rwb") as f:
            f.write(b'{"cmd": "wifi", "reachable": true}\nnot json\n')
            f.flush()
            assert json.loads(f.readline())["reachable"] is True
            assert "error" in json.loads(f.readline())
    finally:
        p.terminate()
        p.wait(10)


def test_devhost_bad_arguments():
    r = subprocess.run([sys.executable, "-m", "sim.devhost", "--unique-id", "xyz"], cwd=ROOT,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and r.stderr.strip() == "error: --unique-id must be hex"
    r = subprocess.run([sys.executable, "-m", "sim.devhost", "--nfc", "usb:ffff:ffff"],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and r.stderr.startswith("error: cannot open nfcpy device")
