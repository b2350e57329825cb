"""`provision.py partition` end to end on the virtual board (sim/serialdev.py): the real
firmware's journal code on the board says what is unsent, the table goes into the board's
16 MB flash image through esptool's API (faked over that image file: the ROM bootloader's
protocol is the one boundary nothing here emulates), and after the reset the board's
`esp32.Partition` serves the partitions of the new table.

The board starts with an older layout (the 4 MB-era split of docs/journal.md on a 16 MB
chip) whose journal holds taps: the step refuses while any is unsent, and goes ahead once
the depot acknowledged them (or with --force, losing them)."""

import json

import pytest

from host import provision
from host.provisioning import audit as auditlog
from host.provisioning import parttable as pt
from host.provisioning import partition as partmod
from host.provisioning.errors import UnsentTaps
from host.provisioning.install import put_file
from host.provisioning.link import Link
from sim.serialdev import SerialDevice
from tests.host.prov_support import ImageEsptool
from tests.support.mp import ROOT

pytestmark = pytest.mark.timeout(300)

OLD = pt.STOCK + (pt.part("vfs", pt.DATA, pt.SUB_FAT, 0x200000, 0x80000),
                  pt.part("journal", pt.DATA, pt.SUB_JOURNAL, 0x280000, 0x180000))
JOURNAL_CODE = ["crc32.py", "unload.py"] + ["journal/" + p.name for p in
                                             sorted((ROOT / "firmware" / "journal").glob("*.py"))]
APPEND = """\
import esp32
from journal import Journal
j = Journal(esp32.Partition.find(esp32.Partition.TYPE_DATA, label="journal")[0])
j.mount()
for i in range(%d):
    j.append(b"tap %%d" %% i, 1800000000 + i)
print("@@J", j.status().unsent, j.status().last_seq)
"""
ACK = """\
import esp32
from journal import Journal
j = Journal(esp32.Partition.find(esp32.Partition.TYPE_DATA, label="journal")[0])
j.mount()
j.ack(j.status().last_seq)
print("@@J", j.status().unsent)
"""
WHERE = """\
import esp32
print("@@W", [p.info()[2:5] for p in esp32.Partition.find(esp32.Partition.TYPE_DATA)])
"""


def _run(dev, code):
    with Link(dev.port) as link:
        link.fresh()
        out = link.exec(code, timeout=30)
    return [line for line in out.splitlines() if line.startswith("@@")][-1].split(" ", 1)[1]


def _put_journal_code(dev):
    with Link(dev.port) as link:
        link.fresh()
        for name in JOURNAL_CODE:
            put_file(link, name, (ROOT / "firmware" / name).read_bytes())


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    d = tmp_path_factory.mktemp("part")
    dev = SerialDevice(d / "flash.img", table=OLD).start()
    yield {"dev": dev, "img": d / "flash.img", "audit": d / "audit.jsonl"}
    dev.stop()


def _cli(b, monkeypatch, *extra):
    fake = ImageEsptool(b["img"], b["dev"])
    monkeypatch.setattr(provision, "ESPTOOL", fake)
    rc = provision.main(["partition", "--port", b["dev"].port, "--audit", str(b["audit"]),
                         "--technician", "tester"] + list(extra))
    return rc, fake


def test_unsent_taps_refuse_the_new_table_nothing_written(board, monkeypatch, capsys):
    dev = board["dev"]
    _put_journal_code(dev)
    assert _run(dev, APPEND % 3) == "3 3"
    before = board["img"].read_bytes()[0x8000:0x9000]
    rc, fake = _cli(board, monkeypatch)
    err = capsys.readouterr().err
    assert rc == 12
    assert err.splitlines()[0] == ("error: partition: the journal holds 3 unsent taps; "
                                   "not changing the table")
    assert "sync the validator at the depot first, or --force" in err
    assert fake.calls == []                       # esptool never touched the board
    assert board["img"].read_bytes()[0x8000:0x9000] == before
    last = auditlog.read(board["audit"])[-1]
    assert (last["step"], last["ok"], last["error"]) == ("partition", False, "unsent_taps")
    # the taps are all still there
    assert _run(dev, APPEND % 0) == "3 3"


def test_acknowledged_journal_lets_the_table_in_and_the_board_serves_it(board, monkeypatch,
                                                                         capsys):
    dev = board["dev"]
    assert _run(dev, ACK) == "0"                  # the depot acknowledged every tap
    rc, fake = _cli(board, monkeypatch)
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "partition: table written and read back" in out
    img = board["img"].read_bytes()
    assert pt.parse(img[0x8000:0x8C00]) == list(pt.VALIDATOR_16MB)
    assert ("erase", 0xA00000, 0x600000) in fake.calls and ("erase", 0x200000, 0x2000) in fake.calls
    last = auditlog.read(board["audit"])[-1]
    assert last["step"] == "partition" and last["ok"] is True
    assert last["result"]["written"] is True and last["result"]["unsent"] == 0
    assert last["result"]["sha256"] and last["result"]["journal_taps_84b"] == 64428
    # after the reset the board's esp32.Partition serves the new table (its LittleFS was
    # formatted afresh on the erased vfs)
    got = json.loads(_run(dev, WHERE).replace("(", "[").replace(")", "]").replace("'", '"'))
    assert sorted(got) == sorted([[p.offset, p.size, p.name] for p in pt.VALIDATOR_16MB
                                  if p.type == pt.DATA and p.name in ("vfs", "journal")])


def test_run_again_is_skipped_without_esptool(board, monkeypatch, capsys):
    rc, fake = _cli(board, monkeypatch)
    assert rc == 0
    assert "already in place — skipped" in capsys.readouterr().out
    assert fake.calls == []
    assert auditlog.read(board["audit"])[-1]["result"]["skipped"] is True


def test_force_changes_a_table_with_unsent_taps(board):
    dev = board["dev"]
    _put_journal_code(dev)
    assert _run(dev, APPEND % 2) == "2 2"
    alt = pt.STOCK + (pt.part("vfs", pt.DATA, pt.SUB_FAT, 0x200000, 0x600000),
                      pt.part("journal", pt.DATA, pt.SUB_JOURNAL, 0x800000, 0x800000))
    fake = ImageEsptool(board["img"], dev)
    with Link(dev.port) as link:
        link.fresh()
        with pytest.raises(UnsentTaps, match="holds 2 unsent"):
            partmod.partition(dev.port, link, esptool_cmds=fake, want=alt, say=lambda m: None)
    assert fake.calls == []
    with Link(dev.port) as link:
        link.fresh()
        res = partmod.partition(dev.port, link, force=True, esptool_cmds=fake, want=alt,
                                say=lambda m: None)
    assert res["forced"] is True and res["unsent"] == 2 and res["written"] is True
    assert pt.parse(board["img"].read_bytes()[0x8000:0x8C00]) == list(alt)
    got = _run(dev, WHERE)
    assert "8388608, 8388608, 'journal'" in got.replace("(", "").replace(")", "")
