# CRC-32 (IEEE 802.3, the zlib/PNG polynomial) in viper: checksums for journal records
# and stored files. Viper compiles to machine code, so this module is the part of the
# firmware that is really architecture-specific in the .mpy (xtensawin on the ESP32).
#
# Written for 32-bit machine words: only `uint` arithmetic, no value above 0xFFFFFFFF,
# so it computes the same on the ESP32 (32-bit) as on the x86-64 unix port (64-bit).
import micropython


@micropython.viper
def _update(crc: uint, buf: ptr8, start: int, end: int) -> uint:
    c = crc ^ uint(0xFFFFFFFF)
    poly = uint(0xEDB88320)
    i = start
    while i < end:
        c = c ^ uint(buf[i])
        k = 0
        while k < 8:
            # branch-free: mask is all ones when the low bit is set
            mask = uint(0) - (c & uint(1))
            c = (c >> 1) ^ (poly & mask)
            k += 1
        i += 1
    return (c ^ uint(0xFFFFFFFF)) & uint(0xFFFFFFFF)


def crc32(data, crc=0, start=0, end=-1):
    """CRC-32 of data[start:end] (bytes/bytearray/memoryview), continuing from `crc`."""
    if end < 0:
        end = len(data)
    if start < 0 or start > end or end > len(data):
        raise ValueError("crc32 range")
    return _update(crc, data, start, end)
