# The ESP32's partition table, read from the flash model as the board reads it
# (MicroPython unix port; used by esp32.attach).
#
# A whole-chip flash image (4 MB or more: sim/launcher.py and sim/serialdev.py make 16 MB
# ones with host/provisioning/parttable.py, the table provisioning writes) holds the
# table at 0x8000: 32-byte entries (magic AA 50, type, subtype, offset, size, 16-byte
# label, flags), then the MD5 entry (EB EB, 14 x FF, MD5 of the entries before it).
# ESP-IDF loads entries until the first slot whose magic is neither (esp_partition
# partition.c load_partitions) and refuses the table if the MD5 is missing or wrong; so
# does this. Like MicroPython's ESP32 port (ports/esp32/main.c boardctrl_startup), a
# table without a `vfs` (or `ffat`) data partition gets one from the end of the last
# partition to the end of the flash. Smaller chips (the 2 MiB data area of older
# simulator images, tests' RAM chips) have no table: read() returns None for them.
import hashlib
import struct

import flashdev

TABLE_OFFSET = 0x8000
TABLE_MAX = 0xC00
WHOLE_CHIP = 4 * 1024 * 1024   # smallest real ESP32 flash; smaller models are data areas
TYPE_DATA = 1
SUB_FAT = 0x81


def read(flash):
    """{label: flashdev.Partition} of the chip's data partitions, or None (no table)."""
    if flash.size < WHOLE_CHIP:
        return None
    e = bytearray(32)
    flash.read(TABLE_OFFSET, e)
    if e[0] != 0xAA or e[1] != 0x50:
        return None
    md5 = hashlib.md5()
    parts = {}
    end = 0
    off = 0
    while True:
        if off >= TABLE_MAX:
            raise ValueError("partition table without MD5 entry")
        flash.read(TABLE_OFFSET + off, e)
        if e[0] == 0xEB and e[1] == 0xEB:
            if bytes(e[16:32]) != md5.digest():
                raise ValueError("partition table MD5 mismatch")
            break
        if e[0] != 0xAA or e[1] != 0x50:
            raise ValueError("no MD5 found in partition table")
        md5.update(e)
        ptype, sub, offset, size = struct.unpack_from("<BBII", e, 2)
        label = bytes(e[12:28])
        i = label.find(b"\0")
        label = (label if i < 0 else label[:i]).decode()
        if offset + size > end:
            end = offset + size
        if ptype == TYPE_DATA:
            parts[label] = flashdev.Partition(flash, offset, size, label, subtype=sub)
        off += 32
    if "vfs" not in parts and "ffat" not in parts and flash.size > end:
        parts["vfs"] = flashdev.Partition(flash, end, flash.size - end, "vfs", subtype=SUB_FAT)
    return parts


def image_size(path, default):
    """The size of an existing flash image file (the chip it models), else `default`."""
    import os
    try:
        return os.stat(path)[6]
    except OSError:
        return default
