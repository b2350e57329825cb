# base45 (RFC 9285) decoding, strict: length % 3 != 1, only the 45 characters, each triplet
# <= 0xFFFF and each final pair <= 0xFF. Errors raise TokenError(BAD_ENCODING).
import micropython

from tokens.errors import TokenError
from tokens.reasons import BAD_ENCODING, TOO_LARGE

_ALPHA = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_VAL = bytearray(b"\xff" * 256)
for _i in range(45):
    _VAL[_ALPHA[_i]] = _i


@micropython.viper
def _triplets(src: ptr8, n: int, dst: ptr8, val: ptr8) -> int:
    # the n whole triplets at src into 2n bytes at dst: 0, or 1 + the index of the first
    # bad triplet (a character outside the 45, or a value above 0xFFFF). Viper: ~20
    # instructions a triplet on the ESP32, where the bytecode loop cost ~16 ms for a QR code.
    # 32 bits: a triplet is at most 44 + 44 * 45 + 44 * 2025 = 91,124.
    i = 0
    while i < n:
        a = int(val[src[3 * i]])
        b = int(val[src[3 * i + 1]])
        c = int(val[src[3 * i + 2]])
        if a == 255 or b == 255 or c == 255:
            return 1 + i
        v = a + b * 45 + c * 2025
        if v > 0xFFFF:
            return 1 + i
        dst[2 * i] = v >> 8
        dst[2 * i + 1] = v & 0xFF
        i += 1
    return 0


def decode(text, start=0, end=-1):
    """Bytes of the base45 text in text[start:end] (bytes/bytearray)."""
    if end < 0:
        end = len(text)
    n = end - start
    out = bytearray((n // 3) * 2 + (1 if n % 3 == 2 else 0))
    decode_into(text, start, end, out)
    return out


def decode_into(text, start, end, out):
    """Decode text[start:end] into out (room for it: TokenError TOO_LARGE if not); returns
    the number of bytes (the tap path's form: no buffer allocated)."""
    n = end - start
    if n % 3 == 1:
        raise TokenError(BAD_ENCODING, "length")
    if (n // 3) * 2 + (1 if n % 3 else 0) > len(out):
        raise TokenError(TOO_LARGE, "base45 text")
    val = _VAL
    # viper takes the buffers as ptr8
    bad = _triplets(memoryview(text)[start:end], n // 3, out, val)  # type: ignore[arg-type]
    if bad:
        i = start + 3 * (bad - 1)
        a, b, c = val[text[i]], val[text[i + 1]], val[text[i + 2]]
        if a == 255 or b == 255 or c == 255:
            raise TokenError(BAD_ENCODING, "character")
        raise TokenError(BAD_ENCODING, "triplet out of range")
    o = (n // 3) * 2
    i = start + (n // 3) * 3
    if i < end:
        a, b = val[text[i]], val[text[i + 1]]
        if a == 255 or b == 255:
            raise TokenError(BAD_ENCODING, "character")
        v = a + b * 45
        if v > 0xFF:
            raise TokenError(BAD_ENCODING, "pair out of range")
        out[o] = v
        o += 1
    return o


def encode(data):
    """base45 text (bytes) of data; the firmware only needs it for tests and tools."""
    out = bytearray()
    for i in range(0, len(data) - 1, 2):
        v = data[i] * 256 + data[i + 1]
        out.append(_ALPHA[v % 45])
        out.append(_ALPHA[(v // 45) % 45])
        out.append(_ALPHA[v // 2025])
    if len(data) % 2:
        v = data[-1]
        out.append(_ALPHA[v % 45])
        out.append(_ALPHA[v // 45])
    return bytes(out)
