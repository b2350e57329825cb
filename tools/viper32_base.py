"""Shared by tools/viper32.py and tools/viper32_compile.py: the 32-bit words, the errors,
and the buffers' flat address space."""

SMALL_MIN, SMALL_MAX = -(1 << 30), (1 << 30) - 1
M32 = 0xFFFFFFFF
BASE = 0x3FC88000        # where buffers are placed: an ESP32-S3 data RAM address (> 2^30)
PTR = {"ptr8": 1, "ptr16": 2, "ptr32": 4}
NATIVE = ("int", "uint", "bool")


class Viper32Error(Exception):
    """The code breaks a rule of viper on a 32-bit target (or uses what this tool lacks)."""


class Overflow(Viper32Error):
    """strict: an int/uint intermediate needed more than 32 bits."""


def s32(v):
    v &= M32
    return v - (1 << 32) if v & 0x80000000 else v


def u32(v):
    return v & M32


class _Mem:
    def __init__(self, bufs):
        self.spans = []       # (start, end, bytearray)
        addr = BASE
        for b in bufs:
            self.spans.append((addr, addr + len(b), b))
            addr = (addr + len(b) + 64) & ~15
        self.addr = {id(b): s for s, _, b in self.spans}

    def find(self, addr, size, line):
        for s, e, b in self.spans:
            if s <= addr and addr + size <= e:
                if size > 1 and addr % size:
                    raise Viper32Error("line %d: unaligned %d-byte access at 0x%x" % (line, size, addr))
                return b, addr - s
        raise Viper32Error("line %d: access at 0x%x outside every buffer" % (line, addr))


