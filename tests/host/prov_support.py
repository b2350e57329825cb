"""Shared set-up for the provisioning tests: a firmware build for the unix port, an
operator key with signed bundles, a depot settings file, a registry path."""

import json
import subprocess
import sys
import time

import serial

from host import bundles
from tests.support.mp import ROOT


def build_firmware(out):
    # The virtual board is an x86-64 machine: viper modules must be built for x64 (an
    # xtensawin .mpy is refused by it, as the foundation tests show).
    r = subprocess.run([sys.executable, "tools/build_firmware.py", "--src", "firmware", "--out",
                        str(out), "--march", "x64"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return out


def make_site(d, registry=None, **over):
    key = bundles.generate_key()
    pub = bundles.public_bytes(key)
    (d / "trust.cose").write_bytes(bundles.sign_bundle(bundles.TRUST, 1,
                                                       bundles.trust_body([]), key))
    (d / "fares.cose").write_bytes(bundles.sign_bundle(
        bundles.FARES, 1, bundles.fares_body({0: 3500, 1: 1000, 2: 1000, 3: 1000, 4: 1000,
                                              5: 1000}), key))
    site = {"operator": "TSM", "operator_key": pub.hex(),
            "wifi": {"ssid": "depot", "psk": "depot-psk-123"},
            "depot_url": "http://10.0.0.1:8080", "trust": "trust.cose", "fares": "fares.cose",
            "registry": str(registry or d / "depot.db")}
    site.update(over)
    (d / "site.json").write_text(json.dumps(site))
    return d / "site.json", key



def power_on_locked(dev, timeout=30):
    """Reset a locked board and return once it says so: the tool then talks to it inside
    its maintenance window, however slow the machine running the tests is."""
    dev.reset()
    got = b""
    with serial.Serial(dev.port, 115200, timeout=0.1) as s:
        end = time.monotonic() + timeout
        while b"BRT-LOCKED" not in got and time.monotonic() < end:
            got += s.read(4096)
    assert b"BRT-LOCKED" in got, got[-300:]
    return got
