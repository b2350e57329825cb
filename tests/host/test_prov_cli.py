"""provision.py's errors without a board: arguments, ports, bad configs, esptool.

`flash` is tested against a fake at the esptool boundary only: esptool speaks the ESP32
ROM bootloader's protocol, and no chip (or bootloader emulator) can be reached here.
"""

import contextlib
import io
import json
import os
import pty
import tempfile
import types
from unittest import mock

import pytest
import serial
from hypothesis import given, settings
from hypothesis import strategies as st

from host import bundles, provision
from host.provisioning import config as hostconfig
from host.provisioning import flash as flashmod
from host.provisioning import parttable
from host.provisioning import ports as portsmod
from host.provisioning.errors import EXIT_CODES, BadConfig, NoPort, WrongChip
from tests.host.prov_support import make_site

WORDS = ["ports", "flash", "partition", "--force", "install", "enroll", "configure", "selftest", "lock", "unlock",
         "all", "--port", "--site", "--bus", "--route", "--build", "--registry", "--wait",
         "--chip", "--audit", "-h", "x", "", "ESP32", "-1", "nan", "\x00", "ü", "--"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(WORDS), st.text(max_size=12)), max_size=6))
def test_any_arguments_give_an_exit_code_never_a_crash(argv):
    # no board is plugged in here: every run ends in usage, a typed error or success
    argv = [a.replace("\x00", "") for a in argv]
    if argv[:1] and argv[0] in ("install", "selftest", "lock", "enroll", "unlock", "partition"):
        argv = argv + ["--port", "/dev/brt-no-such-port"]
    out, err = io.StringIO(), io.StringIO()
    with tempfile.TemporaryDirectory() as d, \
            mock.patch.dict(os.environ, {"BRT_AUDIT": os.path.join(d, "audit.jsonl")}), \
            contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = provision.main(argv)
    assert isinstance(rc, int) and rc in {0, 1} | set(EXIT_CODES.values())
    if rc not in (0, 2):
        assert err.getvalue().startswith("error: "), err.getvalue()
        assert "Traceback" not in err.getvalue()


def test_usage_errors_exit_2(capsys):
    assert provision.main([]) == 2
    assert provision.main(["frobnicate"]) == 2
    assert provision.main(["configure", "--site", "s.json"]) == 2  # no --bus/--route
    assert "--bus" in capsys.readouterr().err
    assert provision.main(["unlock", "--wait", "soon"]) == 2


def test_no_port_exit_3(tmp_path, capsys):
    rc = provision.main(["selftest", "--port", str(tmp_path / "ttyUSB9"),
                         "--audit", str(tmp_path / "a.jsonl")])
    assert rc == 3
    assert capsys.readouterr().err.startswith("error: no serial port")
    # and the audit log says so
    entry = json.loads((tmp_path / "a.jsonl").read_text().splitlines()[-1])
    assert entry["step"] == "selftest" and entry["ok"] is False and entry["error"] == "no_port"


def test_no_board_plugged_in_exit_3(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(portsmod.list_ports, "comports", lambda: [])
    with pytest.raises(NoPort):
        portsmod.pick(None, comports=lambda: [])
    assert provision.main(["selftest", "--audit", str(tmp_path / "a")]) in (3,)
    assert "no ESP32 board found" in capsys.readouterr().err


def test_port_busy_exit_4(tmp_path, capsys):
    m, s = pty.openpty()
    try:
        name = os.ttyname(s)
        holder = serial.Serial(name, 115200, exclusive=True)
        rc = provision.main(["selftest", "--port", name, "--audit", str(tmp_path / "a")])
        assert rc == 4
        assert "in use by another program" in capsys.readouterr().err
        holder.close()
    finally:
        os.close(m)
        os.close(s)


def test_silent_port_is_no_answer_exit_6(tmp_path, capsys):
    m, s = pty.openpty()  # a port with nothing answering on it
    try:
        rc = provision.main(["selftest", "--port", os.ttyname(s), "--audit", str(tmp_path / "a")])
        assert rc == 6
        assert "no answer from a MicroPython REPL" in capsys.readouterr().err
    finally:
        os.close(m)
        os.close(s)


# --- bad configs: refused before anything is written, with the reason ----------------------

def _dev_id():
    return "240ac4a1b2c3"


@pytest.mark.parametrize("over,msg", [
    ({"operator_key": "04" + "ab" * 10}, "config operator_key: must be 65..65 bytes"),
    ({"operator_key": "05" + "ab" * 64}, "must be an uncompressed P-256 point"),
    ({"wifi": {"ssid": "depot", "psk": "short"}}, "config wifi.psk: WPA2 passphrase"),
    ({"wifi": {"ssid": "depot", "pw": "x" * 9}}, "config wifi.pw: unknown key"),
    ({"depot_url": "ftp://depot"}, "config depot_url: must start with http://"),
    ({"qr_window_s": 1}, "config qr_window_s: must be 5..300"),
    ({"operator": "TRANS-SEMARANG"}, "config operator: length must be 1..8"),
])
def test_bad_config_refused_with_reason(tmp_path, over, msg):
    site, _ = make_site(tmp_path, **over)
    s = hostconfig.load_site(site)
    with pytest.raises(BadConfig) as e:
        hostconfig.build(s, _dev_id(), "B-017", "K1")
    assert msg in e.value.msg


def test_bad_bus_refused(tmp_path):
    site, _ = make_site(tmp_path)
    with pytest.raises(BadConfig, match="config bus: length must be 0..16"):
        hostconfig.build(hostconfig.load_site(site), _dev_id(), "B" * 17, "K1")


def test_site_file_errors(tmp_path):
    p = tmp_path / "site.json"
    p.write_text("{not json")
    with pytest.raises(BadConfig, match="not valid JSON"):
        hostconfig.load_site(p)
    p.write_text(json.dumps({"operator": "TSM", "colour": "red"}))
    with pytest.raises(BadConfig, match="unknown key colour"):
        hostconfig.load_site(p)
    with pytest.raises(BadConfig, match="cannot read site file"):
        hostconfig.load_site(tmp_path / "missing.json")


def test_bundle_signed_by_another_key_refused(tmp_path):
    site, _ = make_site(tmp_path)
    s = hostconfig.load_site(site)
    other = bundles.generate_key()
    (tmp_path / "trust.cose").write_bytes(bundles.sign_bundle(bundles.TRUST, 2,
                                                              bundles.trust_body([]), other))
    with pytest.raises(BadConfig, match="trust list bundle .* refused: bad_signature"):
        hostconfig.check_bundle(s["trust"], bundles.TRUST, s["operator_key"])
    # a fare table given as the trust list
    with pytest.raises(BadConfig, match="wrong_kind"):
        hostconfig.check_bundle(s["fares"], bundles.TRUST, s["operator_key"])


def test_bad_config_cli_exit_8_before_touching_any_port(tmp_path, capsys):
    site, _ = make_site(tmp_path, depot_url="depot.local")
    m, s = pty.openpty()  # a port nobody answers on: it must not even be tried
    try:
        rc = provision.main(["configure", "--site", str(site), "--bus", "B1", "--route", "K1",
                             "--port", os.ttyname(s), "--audit", str(tmp_path / "a")])
    finally:
        os.close(m)
        os.close(s)
    assert rc == 8
    assert capsys.readouterr().err.startswith(
        "error: config depot_url: must start with http://")


# --- ports ----------------------------------------------------------------------------------

def _port(device, vid, pid, serial_number="", description=""):
    return types.SimpleNamespace(device=device, vid=vid, pid=pid, serial_number=serial_number,
                                 description=description)


def test_ports_lists_esp32_bridges_only():
    fake = [_port("/dev/ttyUSB0", 0x10C4, 0xEA60, "0001", "CP2102"),
            _port("/dev/ttyACM0", 0x303A, 0x1001, "F4:12:FA:00:11:22"),
            _port("/dev/ttyUSB1", 0x1A86, 0x55D4, "5434"),
            _port("/dev/ttyS0", None, None),
            _port("/dev/ttyACM1", 0x2341, 0x0043, "arduino")]
    got = portsmod.candidates(lambda: fake)
    assert [g["port"] for g in got] == ["/dev/ttyACM0", "/dev/ttyUSB0", "/dev/ttyUSB1"]
    assert got[1]["serial"] == "0001" and "CP210x" in got[1]["bridge"]
    with pytest.raises(NoPort, match="3 ESP32 boards found"):
        portsmod.pick(None, lambda: fake)
    assert portsmod.pick(None, lambda: fake[:1]) == "/dev/ttyUSB0"


# --- flash against a fake esptool (boundary: the ROM bootloader cannot be reached here) ----

class FakeESP:
    def __init__(self, name):
        self.CHIP_NAME = name
        self.baud = None
        self._port = types.SimpleNamespace(close=lambda: None)

    def change_baud(self, b):
        self.baud = b


class FakeEsptool:
    def __init__(self, chip, table=b"\xff" * 0xC00):
        self.chip = chip
        self.calls = []
        self.table = table      # what the board holds at 0x8000

    def detect_chip(self, port, baud):
        self.calls.append(("detect", port))
        return FakeESP(self.chip)

    def run_stub(self, esp):
        self.calls.append(("stub",))
        return esp

    def attach_flash(self, esp):
        self.calls.append(("attach",))

    def read_flash(self, esp, address, size):
        assert (address, size) == (0x8000, 0xC00)
        return self.table

    def write_flash(self, esp, addr_data, compress=False, flash_size="keep"):
        # the image's header must get the real flash size (the bootloader checks the
        # partition table against it)
        assert flash_size == "detect"
        self.calls.append(("write", addr_data[0][0], len(addr_data[0][1]), compress))

    def verify_flash(self, esp, addr_data, flash_size="keep"):
        assert flash_size == "detect"
        self.calls.append(("verify", addr_data[0][0], len(addr_data[0][1])))

    def reset_chip(self, esp, mode):
        self.calls.append(("reset", mode))


@pytest.mark.parametrize("chip,offset", [("ESP32", 0x1000), ("ESP32-S3", 0x0)])
def test_flash_writes_at_the_chip_offset_and_verifies(tmp_path, chip, offset):
    img = tmp_path / "ESP32_GENERIC-20260101-v1.29.0.bin"
    img.write_bytes(os.urandom(4096))
    fake = FakeEsptool(chip)
    r = flashmod.flash("/dev/ttyUSB0", img, chip, esptool_cmds=fake, say=lambda m: None)
    assert r == {"skipped": False, "chip": chip, "offset": offset, "version": "1.29.0",
                 "table_kept": False}
    assert ("write", offset, 4096, True) in fake.calls and ("verify", offset, 4096) in fake.calls
    assert [c[0] for c in fake.calls] == ["detect", "stub", "attach", "write", "verify", "reset"]


def test_flash_keeps_the_validator_partition_table(tmp_path):
    # a release image is bootloader + MicroPython's table + app from 0x0: on a board that
    # has the validator's table, it is written back in the same session
    img = tmp_path / "ESP32_GENERIC_S3-SPIRAM_OCT-20260101-v1.29.0.bin"
    img.write_bytes(os.urandom(0x20000))
    mine = parttable.to_binary(parttable.VALIDATOR_16MB)
    fake = FakeEsptool("ESP32-S3", table=mine)
    r = flashmod.flash("/dev/ttyACM0", img, "ESP32-S3", esptool_cmds=fake, say=lambda m: None)
    assert r["table_kept"] is True
    writes = [c for c in fake.calls if c[0] == "write"]
    assert writes == [("write", 0x0, 0x20000, True), ("write", 0x8000, len(mine), True)]


def test_flash_wrong_chip_exit_5(tmp_path):
    img = tmp_path / "ESP32_GENERIC-v1.29.0.bin"
    img.write_bytes(b"\xe9" * 100)
    fake = FakeEsptool("ESP32-C3")
    with pytest.raises(WrongChip, match="this board is an ESP32-C3, expected ESP32"):
        flashmod.flash("/dev/ttyUSB0", img, "ESP32", esptool_cmds=fake, say=lambda m: None)
    assert not [c for c in fake.calls if c[0] == "write"]
    assert WrongChip.exit == 5


def test_flash_missing_image_is_bad_config(tmp_path):
    with pytest.raises(BadConfig, match="no firmware image"):
        flashmod.flash("/dev/ttyUSB0", tmp_path / "nope.bin", esptool_cmds=FakeEsptool("ESP32"))


def test_image_version_from_release_name():
    assert flashmod.image_version("ESP32_GENERIC-20250415-v1.25.0.bin") == "1.25.0"
    assert flashmod.image_version("firmware.bin") is None
