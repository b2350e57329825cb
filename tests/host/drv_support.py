"""Helpers for the driver/wallet host tests: one tap + one scan through board.py's drivers
under MicroPython (tests/host/drv_tap_mp.py) while the test presents a phone."""

import subprocess
import threading

from sim.devhost import Firmware
from tests.support.mp import ROOT


def run_tap(host, wallet, present, timeout=60):
    """Start the firmware script; when its drivers are up, call present() (the phone at
    the antenna) and show the wallet's QR. Returns {"nfc": (version, token, us),
    "qr": text}."""
    fw = Firmware(host, [ROOT / "tests/host/drv_tap_mp.py"])
    proc = fw.start(stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out = {}

    def feed():
        for line in proc.stdout:
            if line.startswith("@@READY"):
                present()
                threading.Timer(0.3, wallet.show_qr, (host,)).start()
            elif line.startswith("@@NFC "):
                _, version, tok, us = line.split()
                out["nfc"] = (int(version), bytes.fromhex(tok), int(us))
            elif line.startswith("@@QR "):
                out["qr"] = line[5:].rstrip("\n")
    t = threading.Thread(target=feed, daemon=True)
    t.start()
    rc = proc.wait(timeout)
    t.join(5)
    assert rc == 0, proc.stderr.read()
    return out
