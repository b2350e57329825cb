# `esp32` module shim for the simulator: esp32.Partition served by the flash model.
#
# Only what the firmware uses of the real module: Partition.find(...), Partition(label),
# readblocks / writeblocks(block, buf[, offset]) / ioctl / info, with the ESP32's
# semantics (see flashdev.Partition). The chip is attached by sim/vboard/simboot.py (or a
# test) with attach(flash); until then find() returns [] like a board without that
# partition, and Partition(label) raises OSError(ENOENT) like the real one.
import gc
import sys

import flashdev

_parts = {}


def attach(flash, vfs_size=-1):
    """Serve `flash`'s partitions ('vfs', 'journal') from now on; returns them. A whole
    chip's come from its partition table at 0x8000, as on the board (parttable.py)."""
    _parts.clear()
    table = None
    if vfs_size < 0 and flash.size >= 4 * 1024 * 1024:
        import parttable  # a whole chip only; dropped after (tests run in a 128 KB heap)
        table = parttable.read(flash)
        del sys.modules["parttable"]
        gc.collect()  # its compile garbage: not left as holes under the firmware's objects
    _parts.update(table if table is not None else flashdev.partitions(flash, vfs_size))
    return _parts


def detach():
    _parts.clear()


class Partition:
    BOOT = 0
    RUNNING = 1
    TYPE_APP = 0
    TYPE_DATA = 1

    def __init__(self, id, block_size=4096):
        p = _parts.get(id) if isinstance(id, str) else None
        if p is None:
            # esp32_partition.c: esp32_partition_new(NULL) -> mp_raise_OSError(MP_ENOENT)
            raise OSError(2, "ENOENT")
        if block_size != p.block_size:
            p = flashdev.Partition(p.flash, p.offset, p.size, p.label, block_size, p.subtype)
        self._p = p

    @staticmethod
    def find(type=TYPE_APP, subtype=0xFF, label=None, block_size=4096):
        found = []
        if type != Partition.TYPE_DATA:
            return found  # the model holds data partitions only
        for name in ("vfs", "journal"):
            p = _parts.get(name)
            if p is None or (label is not None and label != name):
                continue
            if subtype != 0xFF and subtype != p.subtype:
                continue
            found.append(Partition(name, block_size))
        return found

    def info(self):
        return self._p.info()

    def readblocks(self, block, buf, offset=0):
        self._p.readblocks(block, buf, offset)

    def writeblocks(self, block, buf, offset=None):
        self._p.writeblocks(block, buf, offset)

    def ioctl(self, op, arg):
        return self._p.ioctl(op, arg)
