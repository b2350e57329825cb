# Fixed-size records in one buffer, found by their key without allocating: the pass
# cache (tokens/cache.py) and the allowance's pending sums (app/allowance.py) keep their
# entries this way so a tap neither grows the heap nor leaves long-lived fragments in it.
import micropython


@micropython.viper
def find(buf: ptr8, n: int, stride: int, key: ptr8, klen: int) -> int:
    # index of the first of the n records (stride bytes apart) starting with the klen
    # bytes of key, or -1
    i = 0
    while i < n:
        o = i * stride
        j = 0
        while j < klen:
            if buf[o + j] != key[j]:
                break
            j += 1
        if j == klen:
            return i
        i += 1
    return -1


def u32(b, o):
    """The big-endian uint32 at b[o:o+4] (no tuple, unlike struct.unpack_from)."""
    return (b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]


def put_u32(b, o, v):
    """Write v (0 <= v < 2^32) big-endian at b[o:o+4]."""
    b[o] = (v >> 24) & 0xFF
    b[o + 1] = (v >> 16) & 0xFF
    b[o + 2] = (v >> 8) & 0xFF
    b[o + 3] = v & 0xFF
