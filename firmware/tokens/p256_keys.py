# ECDSA P-256: what is not per verification (tokens/p256.py holds that). Public keys
# decoded and checked on the curve (a trust list's issuer keys), prepare() (an issuer key's
# four tables), verify_digest() and verify() for bundles and tools, and helpers the tests
# and tools use to reach the engine's registers. Boot, depot and tool code: tokens/p256.py
# loads this module the first time one of these names is asked of it (its __getattr__),
# so `p256.verify(...)` works everywhere and the tap path's heap does not hold it.
import hashlib

from tokens import p256 as c

B, CNT, DBL, IMP3, OUT3, P, SPLIT, eng = c.B, c.CNT, c.DBL, c.IMP3, c.OUT3, c.P, c.SPLIT, c.eng
_ws, _STG, _IU, _IX1, _IX2, _ONE32, _MINV_P, _P32 = (c._ws, c._STG, c._IU, c._IX1, c._IX2,
                                                     c._ONE32, c._MINV_P, c._P32)
_stage, _call, _inv_run, _odd_table_be = c._stage, c._call, c._inv_run, c._odd_table_be
decompress_into, verify_q64 = c.decompress_into, c.verify_q64


def _staged(i):
    o = _STG + 32 * i
    return int.from_bytes(_ws[o:o + 32], "little")


def _set(r, v):
    """Register r = v mod p (for tests and tools: it builds a program; not the tap path)."""
    _stage(3, v % P)
    _call(bytes((eng.LDT, r, 0, eng.W0 + 3, eng.MUL, r, r, eng.R2, 0, 1, 0, 0)), 0, _ws)


def _get(r):
    """Register r's value in [0, p) (for tests and tools, like _set)."""
    _call(bytes((eng.MUL, eng.TG, r, eng.P1, eng.STT, 0, eng.TG, eng.W0 + 3, 0, 1, 0, 0)), 0,
          _ws)
    return _staged(3)


def _inverse(a, mb, minv):
    """a^-1 mod m for an int a (prepare()'s inversions; not the tap path)."""
    _ws[_IU:_IU + 32] = a.to_bytes(32, "little")
    _ws[_IX1:_IX1 + 32] = _ONE32
    _inv_run(mb, minv)
    return int.from_bytes(_ws[_IX2:_IX2 + 32], "little")


def on_curve(x, y):
    p = P
    return 0 <= x < p and 0 <= y < p and (y * y - (x * x * x - 3 * x + B)) % p == 0


def decode_point(pub):
    """(x, y) of a 65-byte uncompressed public key, or None if it is not a curve point."""
    if len(pub) != 65 or pub[0] != 4:
        return None
    x = int.from_bytes(pub[1:33], "big")
    y = int.from_bytes(pub[33:65], "big")
    if not on_curve(x, y):
        return None
    return x, y


def decompress(x, odd):
    """y for x on the curve with y's parity `odd`, or None (x >= p or no such point)."""
    if not 0 <= x < P:
        return None
    q = decompress64(x.to_bytes(32, "big"), odd)
    return None if q is None else int.from_bytes(q[32:64], "big")


def decompress64(x, odd):
    """The point (x, y) as 64 bytes x || y big-endian, y of parity `odd`, from x (32 bytes
    big-endian); None if x >= p or x is not on the curve."""
    if len(x) != 32:
        return None
    out = bytearray(64)
    out[0:32] = x
    return bytes(out) if decompress_into(out, 0, odd) else None


def _odd_table(x, y, out):
    """The CNT odd multiples of the affine point (x, y) as rows into out (prepare())."""
    return _odd_table_be(x.to_bytes(32, "big") + y.to_bytes(32, "big"), out)


def _times2k(x, y, k):
    """2^k (x, y), affine (k > 0)."""
    _stage(0, x)
    _stage(1, y)
    _stage(2, 1)
    _call(IMP3, 0, _ws)
    _call(DBL, k, _ws)
    _call(OUT3, 0, _ws)
    zi = _inverse(_staged(2), _P32, _MINV_P)
    z2 = zi * zi % P
    return _staged(0) * z2 % P, _staged(1) * (z2 * zi % P) % P


def verify_point(qx, qy, digest, sig):
    """verify_digest with the public key already decoded and checked (on the curve)."""
    return verify_q64(qx.to_bytes(32, "big") + qy.to_bytes(32, "big"), digest, sig)


def prepare(qx, qy):
    """Precomputation for a key that verifies often (an issuer key): the odd multiples of
    Q, 2^64 Q, 2^128 Q, 2^192 Q in one buffer (2 KB), written in place. Verifying with it
    needs 64 doublings instead of 256."""
    out = bytearray(64 * CNT * SPLIT)
    mv = memoryview(out)
    x, y = qx, qy
    for j in range(SPLIT):
        if j:
            x, y = _times2k(x, y, 256 // SPLIT)
        _odd_table(x, y, mv[64 * CNT * j:64 * CNT * (j + 1)])
    return out


def verify_digest(pub, digest, sig):
    """True if sig (64 bytes r||s) is a valid ECDSA P-256 signature of the 32-byte SHA-256
    `digest` by the 65-byte uncompressed public key `pub`. Never raises on bad input."""
    try:
        if len(sig) != 64 or len(digest) != 32:
            return False
        q = decode_point(pub)
    except (TypeError, ValueError):
        return False
    if q is None:
        return False
    return verify_q64(bytes(pub[1:65]), digest, sig)


def verify(pub, msg, sig):
    """True if sig (64 bytes r||s) is a valid ES256 signature of `msg` by `pub` (65 bytes)."""
    return verify_digest(pub, hashlib.sha256(msg).digest(), sig)
