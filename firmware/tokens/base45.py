# base45 (RFC 9285) decoding, strict: length % 3 != 1, only the 45 characters, each triplet
# <= 0xFFFF and each final pair <= 0xFF. Errors raise TokenError(BAD_ENCODING).
from tokens.errors import TokenError
from tokens.reasons import BAD_ENCODING

_ALPHA = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_VAL = bytearray(b"\xff" * 256)
for _i in range(45):
    _VAL[_ALPHA[_i]] = _i


def decode(text, start=0, end=-1):
    """Bytes of the base45 text in text[start:end] (bytes/bytearray)."""
    if end < 0:
        end = len(text)
    n = end - start
    if n % 3 == 1:
        raise TokenError(BAD_ENCODING, "length")
    out = bytearray((n // 3) * 2 + (1 if n % 3 else 0))
    val = _VAL
    o = 0
    i = start
    while i + 3 <= end:
        a, b, c = val[text[i]], val[text[i + 1]], val[text[i + 2]]
        if a == 255 or b == 255 or c == 255:
            raise TokenError(BAD_ENCODING, "character")
        v = a + b * 45 + c * 2025
        if v > 0xFFFF:
            raise TokenError(BAD_ENCODING, "triplet out of range")
        out[o] = v >> 8
        out[o + 1] = v & 0xFF
        o += 2
        i += 3
    if i < end:
        a, b = val[text[i]], val[text[i + 1]]
        if a == 255 or b == 255:
            raise TokenError(BAD_ENCODING, "character")
        v = a + b * 45
        if v > 0xFF:
            raise TokenError(BAD_ENCODING, "pair out of range")
        out[o] = v
    return out


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
