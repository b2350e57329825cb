"""Interrupted provisioning resumes; the device refuses bad configs itself.

Through pyserial on a pty to the real firmware in the MicroPython unix port
(sim/serialdev.py) with the virtual board's chips (sim/devhost). The "cut" is the
board losing power half-way through an install (the technician's cable pulled)."""

import hashlib
import json
import os

import pytest

from host import provision
from host.provisioning import install as installmod
from host.provisioning.errors import BadConfig, DeviceLocked, ProvisionError
from host.provisioning.link import Link
from sim.devhost.host import DevHost
from sim.serialdev import SerialDevice
from tests.host.prov_support import build_firmware, make_site, power_on_locked

pytestmark = pytest.mark.timeout(300)
DEV = "240ac4d4e5f6"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    d = tmp_path_factory.mktemp("resume")
    fw = build_firmware(d / "fw")
    site, _ = make_site(d)
    host = DevHost(unique_id=bytes.fromhex(DEV))
    host.start()
    dev = SerialDevice(d / "flash.img", devhost=host.address).start()
    yield {"dir": d, "fw": fw, "site": site, "dev": dev, "audit": d / "audit.jsonl"}
    dev.stop()
    host.stop()


def _cli(w, *args):
    return provision.main([args[0], "--port", w["dev"].port, "--audit", str(w["audit"])]
                          + list(args[1:]))


class CutAt:
    """A progress bar that pulls the plug once `fraction` of the bytes went out."""

    def __init__(self, dev, total, fraction):
        self.dev, self.at, self.sent, self.cut = dev, total * fraction, 0, False

    def advance(self, n):
        self.sent += n
        if not self.cut and self.sent >= self.at:
            self.cut = True
            self.dev.reset()

    def done(self):
        pass


def test_install_cut_half_way_then_resumed(world, capsys):
    dev = world["dev"]
    manifest = json.loads((world["fw"] / "manifest.json").read_text())
    n = len(manifest["files"])
    bars = []

    def bar(total, label):
        bars.append(CutAt(dev, total, 0.5))
        return bars[-1]

    with Link(dev.port) as link:
        link.enter_raw()
        with pytest.raises(ProvisionError):
            installmod.install(link, world["fw"], say=lambda m: None, bar=bar)
    assert bars[0].cut
    assert _cli(world, "install", "--build", str(world["fw"])) == 0
    out = capsys.readouterr().out
    left = int(out.split("install: ")[1].split(" of ")[0])
    assert 0 < left < n, out  # only what the cut left undone is sent again
    with Link(dev.port) as link:
        link.fresh()
        files = installmod.device_files(link)
        have = installmod.device_hashes(link, [e["file"] for e in manifest["files"]])
        info = link.call("info")
    assert not [f for f in files if f.endswith(".part")]
    assert all(have[e["file"]] == e["sha256"] for e in manifest["files"])
    assert info["fw"] == hashlib.sha256((world["fw"] / "manifest.json").read_bytes()).hexdigest()


def test_stale_module_is_removed(world, capsys):
    with Link(world["dev"].port) as link:
        link.fresh()
        link.exec("f = open('clock.py', 'w')\nf.write('BROKEN = 1\\n')\nf.close()\n")
    assert _cli(world, "install", "--build", str(world["fw"])) == 0
    assert "removing 1 stale module(s): clock.py" in capsys.readouterr().out
    with Link(world["dev"].port) as link:
        link.fresh()
        assert "clock.py" not in installmod.device_files(link)


def test_device_refuses_bad_config_with_its_reason(world):
    good = json.loads(json.dumps({"v": 1, "device_id": DEV, "operator": "TSM", "bus": "B1",
                                  "route": "K1", "operator_key": "04" + "11" * 64}))
    with Link(world["dev"].port) as link:
        link.fresh()
        other = dict(good, device_id="240ac4000000")
        with pytest.raises(BadConfig, match="this device is " + DEV):
            link.call("configure", json.dumps(other))
        with pytest.raises(BadConfig, match="config colour: unknown key"):
            link.call("configure", json.dumps(dict(good, colour="red")))
        with pytest.raises(BadConfig, match="not valid JSON"):
            link.call("configure", "{\"v\": 1,")
        assert link.call("info")["cfg"] is None  # nothing was written


def test_all_resumes_after_partial_run_and_rerun_is_safe(world, capsys):
    args = ("all", "--site", str(world["site"]), "--bus", "B-101", "--route", "K2",
            "--build", str(world["fw"]))
    assert _cli(world, "enroll", "--site", str(world["site"])) == 0
    capsys.readouterr()
    assert _cli(world, *args) == 0
    out = capsys.readouterr().out
    assert "board %s: firmware current, enrolled, not configured" % DEV in out
    assert "install: 0 of" in out and "already enrolled" in out
    assert "config.json written" in out and "locked" in out
    # run again on the provisioned, locked validator: refused as locked, nothing changed
    power_on_locked(world["dev"])
    assert _cli(world, *args) == 7
    power_on_locked(world["dev"])
    with Link(world["dev"].port) as link:
        with pytest.raises(DeviceLocked):
            link.enter_raw()


def test_ctrl_c_storm_at_power_on_never_reaches_the_host_files(tmp_path):
    # Ctrl-C while the virtual board boots: it must neither break the boot before the
    # flash is mounted (that would leave a REPL on the host's files) nor lose the REPL
    with SerialDevice(tmp_path / "storm.img") as dev:
        with Link(dev.port) as link:
            for _ in range(3):
                dev.reset()
                link.write(b"\x03\x03\x03")
                link.enter_raw()
                link.exec("f = open('canary.txt', 'w')\nf.write('x')\nf.close()\n")
                assert "canary.txt" in link.exec("import os\nprint(os.listdir('/'))")
        assert os.listdir(dev._cwd) == []
    with SerialDevice(tmp_path / "storm.img") as dev:  # and it is on the board's flash
        with Link(dev.port) as link:
            link.fresh()
            assert link.exec("print(open('canary.txt').read())").strip() == "x"
