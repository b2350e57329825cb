"""The validator's partition table and the binary format the ESP32 bootloader reads.

Format (docs/provisioning.md 'Partition table'; read from ESP-IDF's
components/partition_table/gen_esp32part.py and the bootloader's check,
components/bootloader_support/src/flash_partitions.c `esp_partition_table_verify`):
  - at flash offset 0x8000, at most 0xC00 bytes (96 slots of 32 bytes);
  - one 32-byte entry per partition, little-endian:
        magic b"\\xAA\\x50" | type u8 | subtype u8 | offset u32 | size u32 |
        name 16 bytes (NUL-padded) | flags u32 (bit 0 encrypted, bit 1 readonly)
  - then the MD5 entry: b"\\xEB\\xEB" + 14 x 0xFF + MD5 of every entry before it;
  - then 0xFF up to 0xC00 (an all-0xFF slot ends the table).
The bootloader refuses a table with a bad MD5, an unknown magic, no end slot, or a
partition past the flash size written in the bootloader image's header (byte 3, high
nibble) — so the image must be flashed with its header saying 16 MB (`flash` does).
"""

import collections
import hashlib
import struct

TABLE_OFFSET = 0x8000
TABLE_MAX = 0xC00            # 96 slots; the rest of the 4 KiB sector is left erased
ENTRY = struct.Struct("<2sBBII16sI")
MAGIC = b"\xaa\x50"
MD5_MAGIC = b"\xeb\xeb"
MIB = 1024 * 1024
FLASH_16MB = 16 * MIB

APP, DATA = 0x00, 0x01
SUB_FACTORY, SUB_PHY, SUB_NVS, SUB_FAT = 0x00, 0x01, 0x02, 0x81
SUB_JOURNAL = 0x40           # a custom data subtype (0x40..0xFE are free for applications)
FLAG_ENCRYPTED, FLAG_READONLY = 1, 2

Part = collections.namedtuple("Part", "name type subtype offset size flags")


def part(name, ptype, subtype, offset, size, flags=0):
    return Part(name, ptype, subtype, offset, size, flags)


# MicroPython's own table for every ESP32_GENERIC_S3 image (ports/esp32/partitions-
# 4MiBplus.csv, selected by boards/sdkconfig.base): no `vfs` entry — at boot the port
# registers a `vfs` from the end of the last partition to the end of the flash
# (ports/esp32/main.c, boardctrl_startup). The factory app is 0x1F0000 (1,984 KiB): the
# size makeimg.py checks the stock image against.
STOCK = (
    part("nvs", DATA, SUB_NVS, 0x9000, 0x6000),
    part("phy_init", DATA, SUB_PHY, 0xF000, 0x1000),
    part("factory", APP, SUB_FACTORY, 0x10000, 0x1F0000),
)

# The validator's table for the ESP32-S3-WROOM-1-N16R8 (16 MB): the stock app as is, an
# explicit `vfs` (LittleFS: firmware, config, bundles, stores) and the raw `journal`.
# Journal: 6 MiB = 1,536 sectors, 2 for acks, 1,534 data sectors; with the largest tap
# record docs/records.md allows (84 bytes: ids of 16 bytes, u32 fare and version) a sector
# holds 42 records, so 64,428 taps (>= 50,000 with ~29 % to spare); 61-byte records: 84,370.
VALIDATOR_16MB = STOCK + (
    part("vfs", DATA, SUB_FAT, 0x200000, 0x800000),
    part("journal", DATA, SUB_JOURNAL, 0xA00000, 0x600000),
)

# journal sizing figures (docs/journal.md: 4 KiB sectors, 2 ack sectors, a 20-byte sector
# header, 13 bytes of record overhead; tests/host/test_partition_table.py checks these
# against firmware/journal/format.py)
SECTOR = 4096
ACK_SECTORS = 2
SEC_HDR = 20
REC_OVERHEAD = 13
RECORD_MAX_DOC = 84          # docs/records.md: the largest record its fields can make


class TableError(ValueError):
    """A table that is not valid (to write) or a binary that is not a valid table."""


def journal_capacity(size, payload):
    """Taps of `payload` bytes a journal partition of `size` bytes holds when full."""
    data = size // SECTOR - ACK_SECTORS
    return max(0, data) * ((SECTOR - SEC_HDR) // (payload + REC_OVERHEAD))


def validate(parts, flash_size=FLASH_16MB):
    """The checks gen_esp32part.py and the bootloader make; TableError names the entry."""
    if not parts:
        raise TableError("empty partition table")
    if (len(parts) + 1) * ENTRY.size >= TABLE_MAX:
        raise TableError("too many partitions (%d)" % len(parts))
    names = set()
    for p in parts:
        raw = p.name.encode()
        if not raw or len(raw) > 16:
            raise TableError("partition name %r must be 1..16 bytes" % p.name)
        if p.name in names:
            raise TableError("partition name %s used twice" % p.name)
        names.add(p.name)
        if not (0 <= p.type <= 0xFE and 0 <= p.subtype <= 0xFE):
            raise TableError("%s: type/subtype out of range" % p.name)
        align = 0x10000 if p.type == APP else 0x1000
        if p.offset % align:
            raise TableError("%s: offset 0x%x not aligned to 0x%x" % (p.name, p.offset, align))
        if p.size <= 0 or p.size % 0x1000:
            raise TableError("%s: size 0x%x not a multiple of 4 KiB" % (p.name, p.size))
        if p.offset < TABLE_OFFSET + 0x1000:
            raise TableError("%s: offset 0x%x is below 0x9000" % (p.name, p.offset))
        if p.offset + p.size > flash_size:
            raise TableError("%s: ends at 0x%x, past the %d MB flash"
                             % (p.name, p.offset + p.size, flash_size // MIB))
    last = None
    for p in sorted(parts, key=lambda q: q.offset):
        if last is not None and p.offset < last.offset + last.size:
            raise TableError("%s at 0x%x overlaps %s" % (p.name, p.offset, last.name))
        last = p


def to_binary(parts, flash_size=FLASH_16MB):
    """The 0xC00 bytes to write at 0x8000."""
    validate(parts, flash_size)
    out = b"".join(ENTRY.pack(MAGIC, p.type, p.subtype, p.offset, p.size, p.name.encode(),
                              p.flags) for p in parts)
    out += MD5_MAGIC + b"\xff" * 14 + hashlib.md5(out).digest()
    return out + b"\xff" * (TABLE_MAX - len(out))


def parse(blob):
    """Parts of a binary table (bytes from 0x8000); TableError if the bootloader would
    refuse it (bad magic, MD5 missing or wrong, no end slot)."""
    parts = []
    md5 = hashlib.md5()
    seen_md5 = False
    for off in range(0, min(len(blob), TABLE_MAX) - ENTRY.size + 1, ENTRY.size):
        e = bytes(blob[off:off + ENTRY.size])
        if e == b"\xff" * ENTRY.size:
            if not parts:
                raise TableError("no partition table (erased flash at 0x8000)")
            if not seen_md5:
                raise TableError("partition table without its MD5 entry")
            return parts
        if seen_md5:
            raise TableError("entry after the MD5 entry at +0x%x" % off)
        if e[:2] == MD5_MAGIC:
            if e[16:] != md5.digest():
                raise TableError("partition table MD5 mismatch")
            seen_md5 = True
            continue
        magic, ptype, sub, offset, size, name, flags = ENTRY.unpack(e)
        if magic != MAGIC:
            raise TableError("bad entry magic %s at +0x%x" % (magic.hex(), off))
        md5.update(e)
        parts.append(Part(name.split(b"\0", 1)[0].decode("ascii", "replace"), ptype, sub,
                          offset, size, flags))
    raise TableError("partition table has no end slot")


def as_runtime(parts, flash_size=FLASH_16MB):
    """What `esp32.Partition.find` sees on MicroPython: the table, plus the `vfs` the port
    adds when the table has none (ports/esp32/main.c)."""
    parts = list(parts)
    if not any(p.name in ("vfs", "ffat") and p.type == DATA for p in parts):
        end = max(p.offset + p.size for p in parts)
        if flash_size > end:
            parts.append(part("vfs", DATA, SUB_FAT, end, flash_size - end))
    return parts


def find(parts, name):
    for p in parts:
        if p.name == name:
            return p
    return None


TYPE_NAMES = {APP: "app", DATA: "data"}
SUB_NAMES = {(APP, SUB_FACTORY): "factory", (DATA, SUB_NVS): "nvs", (DATA, SUB_PHY): "phy",
             (DATA, SUB_FAT): "fat"}


def to_csv(parts):
    """gen_esp32part.py's CSV for the table (docs/provisioning.md shows it)."""
    rows = ["# Name,   Type, SubType, Offset,   Size,     Flags"]
    for p in parts:
        sub = SUB_NAMES.get((p.type, p.subtype), "0x%x" % p.subtype)
        rows.append(("%-9s %-5s %-8s %-9s %-9s" % (
            p.name + ",", TYPE_NAMES.get(p.type, "0x%x" % p.type) + ",", sub + ",",
            "0x%X," % p.offset, "0x%X," % p.size)).rstrip())
    return "\n".join(rows) + "\n"


def image(table=VALIDATOR_16MB, flash_size=FLASH_16MB, flash_size_code=None):
    """A blank flash chip's bytes as the simulator uses them: erased (0xFF), a bootloader
    image header whose flash-size nibble says `flash_size` (the rest of the bootloader
    is not modelled), and `table` at 0x8000 (None: no table written)."""
    data = bytearray(b"\xff") * flash_size
    code = flash_size_code if flash_size_code is not None else SIZE_CODES[flash_size // MIB]
    data[0:4] = bytes((0xE9, 0x03, 0x02, (code << 4) | 0x0F))
    if table is not None:
        data[TABLE_OFFSET:TABLE_OFFSET + TABLE_MAX] = to_binary(table, flash_size)
    return data


# bootloader image header byte 3, high nibble (esptool / esp_image_format.h)
SIZE_CODES = {1: 0, 2: 1, 4: 2, 8: 3, 16: 4, 32: 5, 64: 6, 128: 7}


def header_flash_size(head):
    """Flash size in bytes the bootloader image header `head` (>= 4 bytes) declares,
    or None if it is not an ESP image header."""
    if len(head) < 4 or head[0] != 0xE9:
        return None
    code = head[3] >> 4
    for mb, c in SIZE_CODES.items():
        if c == code:
            return mb * MIB
    return None


def write_image(path, table=VALIDATOR_16MB, flash_size=FLASH_16MB):
    """Create the simulator's flash image file if it does not exist yet."""
    import os
    if os.path.exists(path):
        return False
    tmp = str(path) + ".new"
    with open(tmp, "wb") as f:
        f.write(image(table, flash_size))
    os.replace(tmp, path)
    return True
