"""`partition`: write the validator's partition table (parttable.VALIDATOR_16MB) at 0x8000.

1. Ask the running validator (raw REPL) what it has: its data partitions as
   `esp32.Partition.find` sees them, and — if one is called `journal` — how many taps in
   it are unsent (the firmware's own journal code mounts it). Already the wanted layout:
   nothing to do. Unsent taps, or a journal nobody can read, and no `--force`: refused,
   nothing written (the taps would be lost with the old layout).
2. esptool (download mode): the chip must be an ESP32-S3 with 16 MB of flash, and its
   bootloader's header must say 16 MB (else the bootloader refuses the table and the board
   no longer boots: `flash` writes the header with the detected size). The table is
   written, read back and parsed again; a changed `vfs` gets its first two blocks erased
   (MicroPython formats an erased one at boot, and loops on "filesystem corrupted" if the
   old LittleFS is still there), a changed `journal` is erased whole (so no sector of an
   old journal can be taken for a record). Then a hard reset.
MicroPython cannot write the table itself: ESP-IDF refuses writes to the partition table
region from the running app (CONFIG_SPI_FLASH_DANGEROUS_WRITE_ABORTS).
"""

import hashlib
import json

from . import parttable as pt
from .errors import DeviceError, UnsentTaps, WrongChip
from .flash import bootloader

BOOTLOADER_OFFSET = 0x0       # ESP32-S3: the bootloader image starts at 0x0
LFS_HEAD = 0x2000             # LittleFS keeps its superblock pair in blocks 0 and 1

# Runs on the device (plain MicroPython: works before maint.py is installed).
PROBE = """\
import esp32, json
r = {"parts": [], "unsent": None, "why": None}
for p in esp32.Partition.find(esp32.Partition.TYPE_DATA):
    i = p.info()
    r["parts"].append([i[4], i[0], i[1], i[2], i[3]])
js = esp32.Partition.find(esp32.Partition.TYPE_DATA, label="journal")
if js:
    try:
        from journal import Journal
        st = Journal(js[0]).mount()
        r["unsent"] = st.unsent
        r["last_seq"] = st.last_seq
    except ImportError:
        r["why"] = "the firmware's journal code is not installed"
    except Exception as e:
        r["why"] = "%s: %s" % (type(e).__name__, e)
print("@@P", json.dumps(r))
"""


def probe(link):
    """The device's view: {"parts": [[label, type, subtype, offset, size]...], "unsent": n
    or None, "why": reason the journal could not be read, or None}."""
    out = link.exec(PROBE, timeout=30)
    for line in out.splitlines():
        if line.startswith("@@P "):
            return json.loads(line[4:])
    raise DeviceError("partition: no answer to the partition probe (%r)" % out[-200:])


def _same(dev_parts, want, name):
    w = pt.find(want, name)
    for label, ptype, sub, offset, size in dev_parts:
        if label == name:
            return (ptype, sub, offset, size) == (w.type, w.subtype, w.offset, w.size)
    return False


def check_device(info, want=pt.VALIDATOR_16MB, force=False):
    """(already_in_place, unsent) — or UnsentTaps if the old layout still holds taps."""
    if _same(info["parts"], want, "vfs") and _same(info["parts"], want, "journal"):
        return True, info.get("unsent")
    has_journal = any(p[0] == "journal" for p in info["parts"])
    unsent = info.get("unsent")
    if has_journal and not force:
        if info.get("why"):
            raise UnsentTaps("partition: cannot tell whether the journal holds unsent taps "
                             "(%s); not changing the table" % info["why"],
                             "install the firmware and sync at the depot first, or --force")
        if unsent:
            raise UnsentTaps("partition: the journal holds %d unsent taps; not changing the "
                             "table" % unsent,
                             "sync the validator at the depot first, or --force to discard them")
    return False, unsent


def _esptool_cmds():
    import esptool.cmds
    return esptool.cmds


def _holds_journal(esptool_cmds, esp, p):
    """True if any data sector of partition `p` starts with the journal's magic "BRJ"
    (docs/journal.md; any format version): a journal of ours is there."""
    for s in range(2, p.size // pt.SECTOR):
        if bytes(esptool_cmds.read_flash(esp, p.offset + s * pt.SECTOR, 3)) == b"BRJ":
            return True
    return False


def _flash_view(current):
    """[[label, type, subtype, offset, size]...] of the data partitions MicroPython sees
    with the table bytes `current` (the port's automatic vfs included); [] if none."""
    try:
        parts = pt.as_runtime(pt.parse(current))
    except pt.TableError:
        return []
    return [[p.name, p.type, p.subtype, p.offset, p.size] for p in parts if p.type == pt.DATA]


def write_table(port, want=pt.VALIDATOR_16MB, old_parts=None, say=print, esptool_cmds=None,
                force=False):
    """Write `want` with esptool; returns what was done (for the audit log).

    `old_parts`: the data partitions the running board reported (probe), or None when its
    MicroPython did not answer: then the table on the flash says what they were, and a
    journal there that would move is refused (nobody could count its unsent taps) unless
    `force`. A `journal` region that holds journal sectors while the board knew no journal
    partition (MicroPython re-flashed with its own table by another tool) is the same
    journal: the table is restored around it, nothing of it erased."""
    if esptool_cmds is None:
        esptool_cmds = _esptool_cmds()
    blob = pt.to_binary(want)
    done = {"sha256": hashlib.sha256(blob).hexdigest(), "erased": []}
    with bootloader(esptool_cmds, port,
                    "hold BOOT while pressing RESET, or check the USB cable") as esp:
        if esp.CHIP_NAME != "ESP32-S3":
            raise WrongChip("this board is an %s; the validator's table is for the "
                            "ESP32-S3 (16 MB)" % esp.CHIP_NAME)
        esp = esptool_cmds.run_stub(esp)
        esptool_cmds.attach_flash(esp)
        size = esptool_cmds.detect_flash_size(esp)
        if size != "16MB":
            raise WrongChip("this board has %s of flash; the validator's table needs 16MB"
                            % (size or "an unknown amount"))
        head = esptool_cmds.read_flash(esp, BOOTLOADER_OFFSET, 16)
        declared = pt.header_flash_size(head)
        if declared != pt.FLASH_16MB:
            raise DeviceError("partition: the bootloader's header says %s of flash and would "
                              "refuse a 16 MB table" % ("%d MB" % (declared // pt.MIB)
                                                        if declared else "no image"),
                              "run `flash` again (it writes the header with the flash size)")
        current = esptool_cmds.read_flash(esp, pt.TABLE_OFFSET, pt.TABLE_MAX)
        if old_parts is None:
            old_parts = _flash_view(current)
            j = [p for p in old_parts if p[0] == "journal"]
            w = pt.find(want, "journal")
            if j and (j[0][3], j[0][4]) != (w.offset, w.size) and not force:
                raise UnsentTaps("partition: the board's MicroPython does not answer, so "
                                 "nobody can tell whether its journal at 0x%X holds unsent "
                                 "taps; not changing the table" % j[0][3],
                                 "get the validator answering (and synced) first, or --force")
        done["written"] = bytes(current) != blob
        if done["written"]:
            say("partition: writing the table at 0x%x (%d partitions)" % (pt.TABLE_OFFSET,
                                                                          len(want)))
            esptool_cmds.write_flash(esp, [(pt.TABLE_OFFSET, blob)])
        back = esptool_cmds.read_flash(esp, pt.TABLE_OFFSET, pt.TABLE_MAX)
        try:
            got = pt.parse(back)
        except pt.TableError as e:
            raise DeviceError("partition: the table read back is not valid: %s" % e) from None
        if bytes(back) != blob or got != list(want):
            raise DeviceError("partition: the table read back differs from the one written")
        old = {p[0]: (p[3], p[4]) for p in old_parts}
        restore = "journal" not in old and _holds_journal(esptool_cmds, esp,
                                                           pt.find(want, "journal"))
        if restore:
            say("partition: a journal is already at 0x%X: the table is restored around it, "
                "its taps and the files kept" % pt.find(want, "journal").offset)
            done["restored"] = True
        for name, span in (("vfs", LFS_HEAD), ("journal", None)):
            w = pt.find(want, name)
            if old.get(name) != (w.offset, w.size) and not restore:
                n = span or w.size
                say("partition: erasing %s (0x%x, %d KiB)" % (name, w.offset, n // 1024))
                esptool_cmds.erase_region(esp, w.offset, n)
                done["erased"].append(name)
        esptool_cmds.reset_chip(esp, "hard-reset")
    return done


def partition(port, link, force=False, say=print, esptool_cmds=None, want=pt.VALIDATOR_16MB):
    """The whole step: check on the device (link: a Link in the raw REPL, or None if its
    MicroPython does not answer), then write."""
    if link is None:
        say("partition: the board's MicroPython does not answer — reading its table with "
            "esptool")
        res = {"table": pt.to_csv(want).splitlines()[1:], "unsent": None,
               "journal_taps_84b": pt.journal_capacity(pt.find(want, "journal").size,
                                                       pt.RECORD_MAX_DOC), "skipped": False,
               "forced": bool(force), "probe": "no answer"}
        res.update(write_table(port, want, None, say, esptool_cmds, force))
        return res
    info = probe(link)
    in_place, unsent = check_device(info, want, force)
    res = {"table": pt.to_csv(want).splitlines()[1:], "unsent": unsent,
           "journal_taps_84b": pt.journal_capacity(pt.find(want, "journal").size,
                                                   pt.RECORD_MAX_DOC)}
    if in_place:
        say("partition: the validator's table is already in place — skipped")
        res["skipped"] = True
        return res
    if force and unsent:
        say("partition: --force: %d unsent taps will be lost" % unsent)
    res["forced"] = bool(force and (unsent or info.get("why")))
    link.close()  # esptool resets the board into its ROM bootloader on the same port
    res.update(write_table(port, want, info["parts"], say, esptool_cmds))
    res["skipped"] = False
    say("partition: table written and read back; vfs %s, journal %s (%d taps of %d bytes)"
        % ("0x%X+0x%X" % (pt.find(want, "vfs").offset, pt.find(want, "vfs").size),
           "0x%X+0x%X" % (pt.find(want, "journal").offset, pt.find(want, "journal").size),
           res["journal_taps_84b"], pt.RECORD_MAX_DOC))
    return res
