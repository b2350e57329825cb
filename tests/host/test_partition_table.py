"""The partition table provisioning writes (issue 14, item 2).

The bar: the table is written to a simulated 16 MB flash through provisioning's own step
(esptool faked over the flash image, the one boundary that cannot run here), then read
back with a parser written HERE from docs/provisioning.md 'Partition table' — not the
generator's — and the `journal` partition is found where the journal's sizing says.
"""

import hashlib
import re
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from host.provisioning import parttable as pt
from host.provisioning import partition as partmod
from host.provisioning.errors import UnsentTaps, WrongChip, DeviceError
from tests.host.prov_support import ImageEsptool
from tests.support.mp import ROOT

MB = 1 << 20


def doc_parse(blob):
    """Independent reader of the documented format (docs/provisioning.md):
    32-byte entries `AA 50 | type | subtype | offset u32le | size u32le | name[16] |
    flags u32le`, then `EB EB` + 14 x FF + MD5(all entries before), then FF padding."""
    out, digest = [], hashlib.md5()
    for i in range(0, 0xC00, 32):
        e = blob[i:i + 32]
        if e[:2] == b"\xeb\xeb":
            assert e[2:16] == b"\xff" * 14
            assert e[16:] == digest.digest(), "MD5 entry does not match the entries"
            assert blob[i + 32:0xC00] == b"\xff" * (0xC00 - i - 32), "padding not 0xFF"
            return out
        assert e[:2] == b"\xaa\x50", "entry %d: bad magic %r" % (i // 32, e[:2])
        digest.update(e)
        out.append({"type": e[2], "subtype": e[3],
                    "offset": int.from_bytes(e[4:8], "little"),
                    "size": int.from_bytes(e[8:12], "little"),
                    "name": e[12:28].rstrip(b"\0").decode(),
                    "flags": int.from_bytes(e[28:32], "little")})
    raise AssertionError("no MD5 entry in 0xC00 bytes")


def test_table_written_to_a_16mb_flash_reads_back_with_the_journal(tmp_path):
    img = tmp_path / "flash.img"
    pt.write_image(img, table=pt.STOCK)          # a board fresh from `flash`: stock table
    esp = ImageEsptool(img)
    done = partmod.write_table("/dev/fake", old_parts=[], say=lambda m: None,
                               esptool_cmds=esp)
    assert done["written"] and set(done["erased"]) == {"vfs", "journal"}
    data = img.read_bytes()
    assert len(data) == 16 * MB
    parts = doc_parse(data[0x8000:0x8000 + 0xC00])
    journal = [p for p in parts if p["name"] == "journal"]
    assert len(journal) == 1
    j = journal[0]
    assert j["type"] == 1 and j["subtype"] == 0x40 and j["offset"] % 4096 == 0
    assert j["offset"] + j["size"] <= 16 * MB
    # the app is MicroPython's stock factory partition, where the stock image expects it
    app = [p for p in parts if p["type"] == 0]
    assert app == [{"type": 0, "subtype": 0, "offset": 0x10000, "size": 0x1F0000,
                    "name": "factory", "flags": 0}]
    vfs = [p for p in parts if p["name"] == "vfs"][0]
    assert vfs["subtype"] == 0x81
    # nothing overlaps, nothing below 0x9000 (the table's own sector)
    spans = sorted((p["offset"], p["offset"] + p["size"]) for p in parts)
    assert spans[0][0] >= 0x9000
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
    # the erased journal and vfs head read 0xFF (MicroPython formats the vfs at boot)
    assert data[j["offset"]:j["offset"] + j["size"]] == b"\xff" * j["size"]
    assert data[vfs["offset"]:vfs["offset"] + 0x2000] == b"\xff" * 0x2000
    # and the reset that ends the step
    assert esp.calls[-1] == ("reset", "hard-reset")


def _journal_numbers():
    src = (ROOT / "firmware" / "journal" / "format.py").read_text()
    get = {k: int(re.search(r"^%s = const\((\d+)\)" % k, src, re.M).group(1))
           for k in ("SECTOR", "SEC_HDR", "REC_OVERHEAD", "ACK_SECTORS")}
    return get


def test_journal_partition_holds_50000_of_the_largest_records():
    # sizes from the journal's own source (docs/journal.md) and the largest tap record
    # docs/records.md allows: map(11) with ids of 16 bytes and u32 fare and version
    n = _journal_numbers()
    assert (n["SECTOR"], n["SEC_HDR"], n["REC_OVERHEAD"], n["ACK_SECTORS"]) == \
        (pt.SECTOR, pt.SEC_HDR, pt.REC_OVERHEAD, pt.ACK_SECTORS)
    largest = 1 + (1 + 5) + 2 + 2 + 2 + (1 + 2) + 3 * (1 + 1 + 16) + 2 + (1 + 5) + (1 + 5)
    assert largest == pt.RECORD_MAX_DOC == 84
    size = [p for p in doc_parse(pt.to_binary(pt.VALIDATOR_16MB)) if p["name"] == "journal"][0]["size"]
    sectors = size // n["SECTOR"] - n["ACK_SECTORS"]
    per = (n["SECTOR"] - n["SEC_HDR"]) // (largest + n["REC_OVERHEAD"])
    assert sectors * per >= 50_000
    assert sectors * per == pt.journal_capacity(size, largest) == 64_428
    assert pt.journal_capacity(size, 61) == 84_370


def test_generated_binary_matches_the_documented_csv():
    doc = (ROOT / "docs" / "provisioning.md").read_text()
    assert pt.to_csv(pt.VALIDATOR_16MB) in doc
    assert pt.to_csv(pt.VALIDATOR_16MB) in (ROOT / "docs" / "journal.md").read_text()
    parsed = doc_parse(pt.to_binary(pt.VALIDATOR_16MB))
    assert [(p["name"], p["type"], p["subtype"], p["offset"], p["size"]) for p in parsed] == \
        [(p.name, p.type, p.subtype, p.offset, p.size) for p in pt.VALIDATOR_16MB]
    assert pt.parse(pt.to_binary(pt.VALIDATOR_16MB)) == list(pt.VALIDATOR_16MB)


@pytest.mark.parametrize("bad,msg", [
    ((pt.part("app", 0, 0, 0x18000, 0x10000),), "not aligned to 0x10000"),
    ((pt.part("a", 1, 1, 0x9000, 0x2000), pt.part("b", 1, 1, 0xA000, 0x1000)), "overlaps"),
    ((pt.part("j", 1, 0x40, 0xF00000, 0x200000),), "past the 16 MB flash"),
    ((pt.part("x" * 17, 1, 1, 0x9000, 0x1000),), "1..16 bytes"),
    ((pt.part("low", 1, 1, 0x7000, 0x1000),), "below 0x9000"),
    ((pt.part("d", 1, 1, 0x9000, 0x1000), pt.part("d", 1, 1, 0xA000, 0x1000)), "used twice"),
    ((pt.part("s", 1, 1, 0x9000, 0x1800),), "multiple of 4 KiB"),
])
def test_invalid_tables_refused_before_anything_is_written(bad, msg):
    with pytest.raises(pt.TableError, match=msg):
        pt.to_binary(bad)


def test_corrupt_binaries_refused():
    good = pt.to_binary(pt.VALIDATOR_16MB)
    with pytest.raises(pt.TableError, match="erased"):
        pt.parse(b"\xff" * 0xC00)
    bad = bytearray(good)
    bad[40] ^= 1                                  # inside the second entry
    with pytest.raises(pt.TableError, match="MD5 mismatch"):
        pt.parse(bad)
    n = len(pt.VALIDATOR_16MB) * 32
    with pytest.raises(pt.TableError, match="without its MD5"):
        pt.parse(good[:n] + b"\xff" * (0xC00 - n))
    bad = bytearray(good)
    bad[32:34] = b"\x12\x34"
    with pytest.raises(pt.TableError, match="bad entry magic"):
        pt.parse(bad)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, (len(pt.VALIDATOR_16MB) + 1) * 32 - 1), st.integers(1, 255))
def test_any_changed_byte_of_entries_or_md5_is_caught(pos, x):
    blob = bytearray(pt.to_binary(pt.VALIDATOR_16MB))
    md5_entry = len(pt.VALIDATOR_16MB) * 32
    if md5_entry + 2 <= pos < md5_entry + 16:
        return  # the MD5 entry's filler: neither the bootloader nor gen_esp32part reads it
    blob[pos] ^= x
    with pytest.raises(pt.TableError):
        pt.parse(blob)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=0, max_size=0xC00))
def test_garbage_is_a_table_error_never_a_crash(blob):
    try:
        parts = pt.parse(blob)
    except pt.TableError:
        return
    # accepted only with a correct MD5 entry over what it returns
    raw = b"".join(struct.pack("<2sBBII16sI", b"\xaa\x50", p.type, p.subtype, p.offset,
                               p.size, blob[i * 32 + 12:i * 32 + 28], p.flags)
                   for i, p in enumerate(parts))
    assert blob[len(raw) + 16:len(raw) + 32] == hashlib.md5(raw).digest()


def test_wrong_chip_small_flash_and_4mb_header_refused_nothing_written(tmp_path):
    img = tmp_path / "flash.img"
    pt.write_image(img, table=pt.STOCK)
    before = img.read_bytes()
    with pytest.raises(WrongChip, match="ESP32-C3"):
        partmod.write_table("p", esptool_cmds=ImageEsptool(img, chip="ESP32-C3"), say=print)
    with pytest.raises(WrongChip, match="8MB of flash"):
        partmod.write_table("p", esptool_cmds=ImageEsptool(img, flash_size="8MB"), say=print)
    # a bootloader whose header says 4 MB would refuse a table reaching past 4 MB
    img4 = tmp_path / "flash4.img"
    img4.write_bytes(pt.image(pt.STOCK, flash_size_code=pt.SIZE_CODES[4]))
    with pytest.raises(DeviceError, match="header says 4 MB"):
        partmod.write_table("p", esptool_cmds=ImageEsptool(img4), say=print)
    assert img.read_bytes() == before
    assert img4.read_bytes()[0x8000:0x8C00] == pt.to_binary(pt.STOCK)


def test_device_check_refuses_unsent_taps_unless_forced():
    old = [["vfs", 1, 0x81, 0x200000, 0x80000], ["journal", 1, 0x40, 0x280000, 0x180000]]
    with pytest.raises(UnsentTaps, match="holds 7 unsent taps"):
        partmod.check_device({"parts": old, "unsent": 7, "why": None})
    with pytest.raises(UnsentTaps, match="cannot tell"):
        partmod.check_device({"parts": old, "unsent": None, "why": "ImportError"})
    assert partmod.check_device({"parts": old, "unsent": 7, "why": None}, force=True) == \
        (False, 7)
    assert partmod.check_device({"parts": old, "unsent": 0, "why": None}) == (False, 0)
    same = [[p.name, p.type, p.subtype, p.offset, p.size] for p in pt.VALIDATOR_16MB
            if p.type == 1]
    # already in place: nothing to write, whatever the journal holds
    assert partmod.check_device({"parts": same, "unsent": 9, "why": None}) == (True, 9)
    assert UnsentTaps.exit == 12


def test_table_reset_by_another_tool_is_restored_around_the_journal(tmp_path):
    # MicroPython re-flashed with plain esptool: its own table is back at 0x8000, the
    # journal (with unsent taps) and the LittleFS still lie where the validator's table
    # put them. Its MicroPython does not answer (the LittleFS does not mount with the stock
    # layout), so the step reads the flash: it restores the table and erases nothing.
    img = tmp_path / "flash.img"
    pt.write_image(img)
    j = pt.find(pt.VALIDATOR_16MB, "journal")
    v = pt.find(pt.VALIDATOR_16MB, "vfs")
    data = bytearray(img.read_bytes())
    sector = j.offset + 7 * 4096
    data[sector:sector + 20] = b"BRJ\x02" + bytes(16)     # a journal data sector
    data[v.offset:v.offset + 8] = b"littlefs"
    data[0x8000:0x8C00] = pt.to_binary(pt.STOCK)
    img.write_bytes(bytes(data))
    fake = ImageEsptool(img)
    res = partmod.partition("/dev/fake", None, esptool_cmds=fake, say=lambda m: None)
    assert res["restored"] is True and res["erased"] == [] and res["written"] is True
    assert not [c for c in fake.calls if c[0] == "erase" and c[1] != 0x8000]
    after = img.read_bytes()
    assert doc_parse(after[0x8000:0x8C00])[-1]["name"] == "journal"
    assert after[sector:sector + 4] == b"BRJ\x02" and after[v.offset:v.offset + 8] == b"littlefs"


def test_silent_board_with_a_journal_elsewhere_is_refused_unless_forced(tmp_path):
    old = pt.STOCK + (pt.part("vfs", pt.DATA, pt.SUB_FAT, 0x200000, 0x80000),
                      pt.part("journal", pt.DATA, pt.SUB_JOURNAL, 0x280000, 0x180000))
    img = tmp_path / "flash.img"
    pt.write_image(img, table=old)
    before = img.read_bytes()
    with pytest.raises(UnsentTaps, match="does not answer"):
        partmod.partition("/dev/fake", None, esptool_cmds=ImageEsptool(img),
                          say=lambda m: None)
    assert img.read_bytes() == before
    res = partmod.partition("/dev/fake", None, force=True, esptool_cmds=ImageEsptool(img),
                            say=lambda m: None)
    assert res["forced"] is True and set(res["erased"]) == {"vfs", "journal"}
    assert pt.parse(img.read_bytes()[0x8000:0x8C00]) == list(pt.VALIDATOR_16MB)
