"""End to end through pyserial: host/provision.py on one end of a pty pair, the real
firmware in the MicroPython unix port on the other (sim/serialdev.py), with the virtual
board's chips (sim/devhost) behind it. The tests run in order on one board: install,
enroll, configure, selftest, lock, then what a locked board refuses and the authenticated
maintenance session that re-opens it."""

import hashlib
import json
import time

import pytest
import serial

from host import provision
from host.provisioning import audit as auditlog
from host.provisioning import registry as regmod
from host.provisioning import steps
from host.provisioning.errors import DeviceLocked, NoAnswer
from host.provisioning.link import Link
from host.depot import DepotStore
from sim.devhost.host import DevHost
from sim.serialdev import SerialDevice
from tests.host.prov_support import build_firmware, make_site, power_on_locked

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    d = tmp_path_factory.mktemp("prov")
    fw = build_firmware(d / "fw")
    site, _ = make_site(d)
    host = DevHost(unique_id=bytes.fromhex("240ac4a1b2c3"))
    host.start()
    dev = SerialDevice(d / "flash.img", devhost=host.address).start()
    w = {"dir": d, "fw": fw, "site": site, "dev": dev, "host": host,
         "audit": d / "audit.jsonl", "registry": d / "depot.db"}
    yield w
    dev.stop()
    host.stop()


def _cli(w, *args):
    cmd, rest = args[0], list(args[1:])
    return provision.main([cmd, "--port", w["dev"].port, "--audit", str(w["audit"]),
                           "--technician", "tester"] + rest)


def test_install_sends_every_file_then_nothing(world, capsys):
    assert _cli(world, "install", "--build", str(world["fw"])) == 0
    out = capsys.readouterr().out
    n = len(json.loads((world["fw"] / "manifest.json").read_text())["files"])
    assert "install: %d of %d files differ" % (n, n) in out
    assert _cli(world, "install", "--build", str(world["fw"])) == 0
    assert "install: 0 of %d files differ" % n in capsys.readouterr().out
    with Link(world["dev"].port) as link:
        link.fresh()
        info = link.call("info")
    mhash = hashlib.sha256((world["fw"] / "manifest.json").read_bytes()).hexdigest()
    assert info["fw"] == mhash and info["id"] == "240ac4a1b2c3" and info["locked"] is False


def test_enroll_registers_secret_keeps_fingerprint_only(world, capsys):
    assert _cli(world, "enroll", "--site", str(world["site"])) == 0
    store = DepotStore(world["registry"]).open()
    # the registry keeps keys derived from the secret and its fingerprint, not the secret
    fp = store.fingerprint("240ac4a1b2c3")
    key = store.sync_key("240ac4a1b2c3")
    assert len(fp) == 16 and len(key) == 32
    out = capsys.readouterr().out
    assert fp in out
    # re-running keeps the enrolled secret
    assert _cli(world, "enroll", "--site", str(world["site"])) == 0
    assert "already enrolled" in capsys.readouterr().out
    assert store.sync_key("240ac4a1b2c3") == key
    audit = world["audit"].read_text()
    assert key.hex() not in audit and fp in audit
    # the device holds the secret these came from: its fingerprint matches the depot's
    with Link(world["dev"].port) as link:
        link.fresh()
        assert link.call("info")["secret_fp"] == fp
    store.close()


def test_configure_writes_validated_config_and_bundles(world, capsys):
    args = ("configure", "--site", str(world["site"]), "--bus", "B-017", "--route", "K1")
    assert _cli(world, *args) == 0
    out = capsys.readouterr().out
    assert "trust.cose v1 installed" in out and "fares.cose v1 installed" in out
    assert "clock set" in out
    assert _cli(world, *args) == 0
    out = capsys.readouterr().out
    assert "already as wanted" in out and "fares.cose v1 already installed" in out
    with Link(world["dev"].port) as link:
        link.fresh()
        text = link.exec("print(open('/data/config.json').read())")
    cfg = json.loads(text)
    assert cfg["bus"] == "B-017" and cfg["route"] == "K1" and cfg["locked"] is False
    assert cfg["device_id"] == "240ac4a1b2c3"


def test_selftest_reports_every_part(world, capsys):
    rc = _cli(world, "selftest")
    out = capsys.readouterr().out
    for part in ("clock", "storage", "config", "bundles", "journal", "nfc", "qr", "display",
                 "rtc"):
        assert "selftest: ok   %s" % part in out, out
    assert rc == 0


def test_lock_then_no_repl_for_whoever_plugs_in(world, capsys):
    assert _cli(world, "lock") == 0
    assert "locked" in capsys.readouterr().out
    world["dev"].reset()
    with serial.Serial(world["dev"].port, 115200, timeout=0.1) as s:
        s.reset_input_buffer()
        got = b""
        end = time.monotonic() + 30
        while b"BRT-LOCKED" not in got and time.monotonic() < end:
            s.write(b"\r\x03\x03\r\x01")  # Ctrl-C, Ctrl-A all through the boot
            got += s.read(4096)
        end = time.monotonic() + 2
        while time.monotonic() < end:
            s.write(b"\x03\x01")
            got += s.read(4096)
    assert b"BRT-LOCKED 240ac4a1b2c3" in got
    assert b"raw REPL" not in got and b">>>" not in got
    # every step now says "locked" (exit 7), nothing is written; locking again is a no-op
    power_on_locked(world["dev"])
    assert _cli(world, "selftest") == 7
    assert "locked" in capsys.readouterr().err
    power_on_locked(world["dev"])
    assert _cli(world, "lock") == 0
    assert "already locked" in capsys.readouterr().out


def test_locked_refuses_unauthenticated_maintenance(world):
    dev = world["dev"]
    dev.reset()
    with Link(dev.port) as link:
        assert link.probe_locked(3.0) is not None
        link.write(b"BRT-MAINT OPEN " + b"00" * 32 + b"\r\n")
        assert b"BRT-MAINT DENIED bad-answer" in link.read_until(b"\r\n", 3)
        # an answer for a challenge never asked (or already used) is refused too
        link.write(b"BRT-MAINT OPEN " + b"11" * 32 + b"\r\n")
        assert b"BRT-MAINT DENIED no-challenge" in link.read_until(b"\r\n", 3)
        # answered by a registry holding another secret: refused
        other = regmod.DepotRegistry(world["dir"] / "other-depot.db")
        other.register("240ac4a1b2c3", b"\x01" * 32)
        with pytest.raises(DeviceLocked):
            steps.open_session(link, other, wait=5, say=lambda m: None)
    time.sleep(3.5)  # the boot window has passed: the validator app runs, the port is silent
    with Link(dev.port) as link:
        link.write(b"\x03\x03\x01")
        with pytest.raises(NoAnswer):
            link.read_until(b"raw REPL", 1.5)


def test_unlock_with_depot_registry_reopens_the_repl(world, capsys, monkeypatch):
    dev = world["dev"]
    said = []

    def technician(msg):
        # the technician presses the reset button when the tool asks for it (a validator
        # serving riders does not listen; one whose app has stopped does, at once)
        said.append(msg)
        print(msg)
        if "press the validator's reset button" in msg:
            dev.reset()
    monkeypatch.setattr(provision, "say", technician)
    assert _cli(world, "unlock", "--registry", str(world["registry"]), "--wait", "20") == 0
    assert any("maintenance session open" in m for m in said)
    with Link(dev.port) as link:
        link.fresh()
        assert link.call("info")["locked"] is False
        assert "locked" not in link.exec("import os\nprint(os.listdir('/data'))")
    # unlocking an unlocked board is a no-op
    assert _cli(world, "unlock", "--registry", str(world["registry"]), "--wait", "5") == 0


def test_audit_log_has_every_step(world):
    entries = auditlog.read(world["audit"])
    steps_ok = {(e["step"], e["ok"]) for e in entries}
    for s in ("install", "enroll", "configure", "selftest", "lock", "unlock"):
        assert (s, True) in steps_ok, s
    assert ("selftest", False) in steps_ok  # the locked attempt is recorded too
    for e in entries:
        assert e["technician"] == "tester" and e["time"].endswith("Z")
    done = [e for e in entries if e["step"] == "configure" and e["ok"]][-1]
    assert done["device"] == "240ac4a1b2c3" and len(done["fw"]) == 64 and len(done["cfg"]) == 64

