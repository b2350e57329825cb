"""base45 (RFC 9285): bytes <-> text in the QR alphanumeric charset."""

from .errors import TokenToolError

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
_VAL = {c: i for i, c in enumerate(ALPHABET)}


def b45encode(data):
    out = []
    for i in range(0, len(data) - 1, 2):
        n = data[i] * 256 + data[i + 1]
        c, n = n % 45, n // 45
        d, e = n % 45, n // 45
        out += (ALPHABET[c], ALPHABET[d], ALPHABET[e])
    if len(data) % 2:
        n = data[-1]
        out += (ALPHABET[n % 45], ALPHABET[n // 45])
    return "".join(out)


def b45decode(text):
    if len(text) % 3 == 1:
        raise TokenToolError("base45 text has a bad length")
    try:
        vals = [_VAL[c] for c in text]
    except KeyError:
        raise TokenToolError("base45 text has a character outside the alphabet") from None
    out = bytearray()
    for i in range(0, len(vals), 3):
        chunk = vals[i:i + 3]
        if len(chunk) == 3:
            n = chunk[0] + chunk[1] * 45 + chunk[2] * 2025
            if n > 0xFFFF:
                raise TokenToolError("base45 triplet out of range")
            out += bytes((n >> 8, n & 0xFF))
        else:
            n = chunk[0] + chunk[1] * 45
            if n > 0xFF:
                raise TokenToolError("base45 pair out of range")
            out.append(n)
    return bytes(out)
