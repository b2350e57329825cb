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


class ImageEsptool:
    """esptool.cmds as provisioning uses it, over the virtual board's flash image file.

    The one fake of the provisioning tests, at the boundary that cannot run here: esptool
    speaks the ESP32 ROM bootloader's serial protocol and nothing emulates that ROM. The
    flash it reads and writes is the same image the firmware runs on (sim/serialdev.py),
    with NOR rules: writes erase the 4 KiB sectors they cover first, erases set 0xFF.
    `dev` (a SerialDevice) is put in download mode on connect and reset at the end."""

    SECTOR = 4096

    def __init__(self, image, dev=None, chip="ESP32-S3", flash_size=None):
        self.image = str(image)
        self.dev = dev
        self.chip = chip
        self.flash_size = flash_size
        self.calls = []

    def _size(self):
        import os
        return os.path.getsize(self.image)

    def detect_chip(self, port, baud):
        import types
        self.calls.append(("detect", port))
        if self.dev is not None:
            self.dev.download_mode()
        return types.SimpleNamespace(CHIP_NAME=self.chip, BOOTLOADER_FLASH_OFFSET=0,
                                     _port=types.SimpleNamespace(close=lambda: None))

    def run_stub(self, esp):
        self.calls.append(("stub",))
        return esp

    def attach_flash(self, esp):
        self.calls.append(("attach",))

    def detect_flash_size(self, esp):
        return self.flash_size or "%dMB" % (self._size() // (1 << 20))

    def read_flash(self, esp, address, size):
        self.calls.append(("read", address, size))
        with open(self.image, "rb") as f:
            f.seek(address)
            return f.read(size)

    def erase_region(self, esp, address, size):
        assert address % self.SECTOR == 0 and size % self.SECTOR == 0, (address, size)
        self.calls.append(("erase", address, size))
        with open(self.image, "r+b") as f:
            f.seek(address)
            f.write(b"\xff" * size)

    def write_flash(self, esp, addr_data, **kw):
        for address, data in addr_data:
            self.calls.append(("write", address, len(data)))
            start = address - address % self.SECTOR
            end = -(-(address + len(data)) // self.SECTOR) * self.SECTOR
            self.erase_region(esp, start, end - start)
            with open(self.image, "r+b") as f:
                f.seek(address)
                f.write(data)

    def verify_flash(self, esp, addr_data, **kw):
        for address, data in addr_data:
            assert self.read_flash(esp, address, len(data)) == data

    def reset_chip(self, esp, mode):
        self.calls.append(("reset", mode))
        if self.dev is not None:
            self.dev.reset()
