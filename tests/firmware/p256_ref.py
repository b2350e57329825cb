# THE ORACLE, not firmware: the bignum ES256 verifier the firmware used before the viper
# engine (firmware/tokens/p256.py). Tests compare the engine with it.
#
# ECDSA P-256 (ES256) signature verification in plain MicroPython.
#
# Stock MicroPython on the ESP32 has no ECDSA and no bignum acceleration exposed to Python
# (DESIGN §2), so this is arbitrary-precision integer code, written for the bytecode
# interpreter:
#   - Jacobian coordinates (no inversion in the loop); a = -3 doubling formula, scaled so
#     that it needs no constant multiples;
#   - u1*G + u2*Q by interleaved width-w NAF (Shamir's trick generalised): one shared run of
#     256 doublings, additions only at the sparse non-zero digits, which the recoding hands
#     over as one sorted list of events (no per-position, per-term digit tests); G's odd
#     multiples are built once (affine, lazily, on first use); Q's per verify, by mixed
#     additions on an isomorphic curve where 2Q is affine, then made affine with a single
#     inversion (Montgomery's trick) so every loop addition is the cheaper mixed one;
#   - the modular inverse of s by the extended Euclidean algorithm (several times faster
#     here than pow(s, n-2, n); pow's 3-argument form is not needed at all), quotients 1
#     and 2 by subtraction;
#   - the final x(R) == r check in projective form (X == r*Z^2), no inversion;
#   - the loops that run per verification (the point sum and its blocks of doublings, the
#     recoding, the inverse) use the native emitter: ~5% less time (the bignum work itself
#     is unchanged). On the ESP32 their ~3.5 KB of machine code live in executable RAM,
#     not in the GC heap. (The point sum calls the native _dbln once per block of
#     doublings: measured paired against the same formula inlined in the loop, within 1%.)
# Every special case of the addition formulas is handled: infinity operands, P + P
# (falls back to doubling), P + (-P) (gives infinity). Inputs are checked: r, s in [1, n-1],
# the public key is 65 bytes 04||x||y with x, y < p and on the curve (an affine point is
# never infinity). Hot loops keep everything in locals: a global lookup costs a dict probe
# in MicroPython.
import hashlib

import micropython

P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
GX = 0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296
GY = 0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5

# G's window: 4 tables (G, 2^64 G, 2^128 G, 2^192 G) of 8 odd multiples, 2 KB. Width 6 (16
# multiples, 4 KB) verified ~5% faster, but the 2 KB decide whether the tap path fits its
# heap with room to spare (tests/host/test_app_soak.py: 128K)
W_G = 5
W_Q = 5   # a public key's window: 8 odd multiples per table
SPLIT = 4  # prepared keys: scalars cut into 4 pieces of 64 bits -> 64 doublings

_gtab = None  # SPLIT packed tables for G (2 KB), built on first use


@micropython.native
def inverse(a, m):
    """a^-1 mod m for 0 < a < m, m prime (extended Euclid)."""
    if not 0 < a < m:  # anything else the plain way (same answers, same errors)
        x0, x1 = 1, 0
        b = m
        while b:
            q = a // b
            a, b = b, a - q * b
            x0, x1 = x1, x0 - q * x1
        if a != 1:
            raise ValueError("not invertible")
        return x0 % m
    # m > a > 0: every step has a > b >= 0. Six in ten quotients are 1 or 2: those are
    # found by one or two subtractions instead of a division.
    x0, x1 = 0, 1
    a, b = m, a
    while b:
        r = a - b
        if r < b:
            a, b = b, r
            x0, x1 = x1, x0 - x1
            continue
        r -= b
        if r < b:
            a, b = b, r
            x0, x1 = x1, x0 - x1 - x1
            continue
        q, r = divmod(a, b)
        a, b = b, r
        x0, x1 = x1, x0 - q * x1
    if a != 1:
        raise ValueError("not invertible")
    return x0 % m


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
    p = P
    if not 0 <= x < p:
        return None
    a = (x * x * x - 3 * x + B) % p
    y = pow(a, (p + 1) // 4, p)  # p = 3 mod 4: the square root, if there is one
    if y * y % p != a:
        return None
    if (y & 1) != (1 if odd else 0):
        y = p - y
    if y == p:  # y == 0 has no odd partner (P-256 has no such point; be exact anyway)
        return None
    return y


@micropython.native
def _dbln(X, Y, Z, k):
    """2^k (X, Y, Z), Jacobian, a = -3 (dbl-2001-b scaled by 1/2: Z3 = Y*Z, alpha/2 in
    place of alpha, which saves the constant multiples). Y == 0 cannot occur on P-256."""
    p = P
    for _ in range(k):
        if Z == 0:
            break
        d = Z * Z % p
        g = Y * Y % p
        b = X * g % p
        a = 3 * (X - d) * (X + d) % p
        if a & 1:
            a += p
        a >>= 1
        Z = Y * Z % p
        X = (a * a - b - b) % p
        Y = (a * (b - X) - g * g) % p
    return X, Y, Z


def _jdouble(X, Y, Z):
    return _dbln(X, Y, Z, 1)


def _madd(X1, Y1, Z1, x2, y2):
    """Jacobian P1 + affine (x2, y2), every special case handled (Z1 == 0: infinity)."""
    if Z1 == 0:
        return x2, y2, 1
    p = P
    zz = Z1 * Z1 % p
    h = (x2 * zz - X1) % p
    r = (y2 * (Z1 * zz % p) - Y1) % p
    if h == 0:
        if r == 0:
            return _dbln(X1, Y1, Z1, 1)  # P + P
        return 1, 1, 0                   # P + (-P)
    hh = h * h % p
    hhh = h * hh % p
    v = X1 * hh % p
    X3 = (r * r - hhh - v - v) % p
    return X3, (r * (v - X3) - Y1 * hhh) % p, Z1 * h % p


def _get(buf, k):
    # the k-th 32-byte big-endian number in buf (the packed tables and scratch)
    return int.from_bytes(buf[32 * k:32 * k + 32], "big")


def _put(buf, k, v):
    buf[32 * k:32 * k + 32] = v.to_bytes(32, "big")


def _odd_multiples(x, y, w, jb):
    """P, 3P, ..., (2^(w-1)-1)P of an affine point P into jb as Jacobian X Y Z (96 bytes a
    point); returns zc: the points are (X, Y, Z * zc). The steps add D = 2P = (Xd, Yd, zc)
    on the isomorphic curve where D is affine (coordinates scaled by zc: x -> x zc^2,
    y -> y zc^3; the addition formulas do not involve a or b), so each is a mixed addition
    (kP != O for k < n). Packed, not a list of tuples of ints: the list took ~3 KB of live
    heap in the middle of a verification, the buffer is allocated once."""
    p = P
    xd, yd, zc = _dbln(x, y, 1, 1)
    z2 = zc * zc % p
    X, Y, Z = x * z2 % p, y * (z2 * zc % p) % p, 1
    for i in range(1 << (w - 2)):
        if i:
            X, Y, Z = _madd(X, Y, Z, xd, yd)
        _put(jb, 3 * i, X)
        _put(jb, 3 * i + 1, Y)
        _put(jb, 3 * i + 2, Z)
    return zc


def _affine(jb, cnt, zc, out):
    """The cnt Jacobian points (X, Y, Z * zc) in jb (none at infinity) as affine x y into
    out (64 bytes a point): one inversion for all (Montgomery's trick)."""
    p = P
    acc = [1] * cnt
    a = 1
    for i in range(cnt):
        acc[i] = a
        a = a * _get(jb, 3 * i + 2) % p
    inv = inverse(a * zc % p, p)  # 1/(zc Z_0 ... Z_i) from here down
    for i in range(cnt - 1, -1, -1):
        Z = _get(jb, 3 * i + 2)
        zi = inv * acc[i] % p
        inv = inv * Z % p
        z2 = zi * zi % p
        _put(out, 2 * i, _get(jb, 3 * i) * z2 % p)
        _put(out, 2 * i + 1, _get(jb, 3 * i + 1) * (z2 * zi % p) % p)
    return out


def _tables(x, y, w, split):
    """Packed odd multiples of P, 2^s P, 2^2s P, ... (s = 256/split), one per piece.
    The long-lived buffers are allocated first, while the heap is not yet cut up by the
    computation's garbage (a 1 KB block can be hard to find on a fragmented 110 KB heap)."""
    step = 256 // split
    cnt = 1 << (w - 2)
    out = [bytearray(64 * cnt) for _ in range(split)]
    jb = bytearray(96 * cnt)
    for j in range(split):
        if j:
            X, Y, Z = _dbln(x, y, 1, step)
            zi = inverse(Z, P)
            z2 = zi * zi % P
            x, y = X * z2 % P, Y * (z2 * zi % P) % P
        _affine(jb, cnt, _odd_multiples(x, y, w, jb), out[j])
    return out


def _ntz_table():
    t = bytearray(256)
    t[0] = 8
    for v in range(1, 256):
        n = 0
        while not (v >> n) & 1:
            n += 1
        t[v] = n
    return bytes(t)


_NTZ = _ntz_table()  # trailing zero bits of a byte (8 for 0): zero runs are skipped whole
_END = 0x8000    # an event past the last one (bit 15 is never set in a real event)


@micropython.native
def _wnaf(k, w, nbits, tag, ev):
    """Append the non-zero digits of the width-w NAF of 0 <= k < 2^nbits (positions
    0..nbits) to ev as events (i << 16) | tag | sign | offset: tag = table index << 12,
    sign = 2048 for a negative digit, offset = byte offset of |digit|'s odd multiple in a
    packed table ((|d| >> 1) * 64). Zero runs are skipped a byte at a time; skipping
    leaves the carry unchanged (the low bits of k + carry are zero only if they are all
    ones with a carry of 1, or all zeros without)."""
    kb = k.to_bytes((nbits >> 3) + 4, "little")  # headroom above the top bit
    ntz = _NTZ
    mask = (1 << w) - 1
    half = 1 << (w - 1)
    full = 1 << w
    i = 0
    c = 0
    while i <= nbits:
        j = i >> 3
        v = ((kb[j] | (kb[j + 1] << 8) | (kb[j + 2] << 16)) >> (i & 7)) + c
        if v & 1:
            v &= mask
            if v >= half:  # a negative digit v - 2^w
                ev.append((i << 16) | tag | 2048 | (((full - v) >> 1) << 6))
                c = 1
            else:
                ev.append((i << 16) | tag | ((v >> 1) << 6))
                c = 0
            i += w  # the next w - 1 digits are zero
        else:
            i += ntz[v & 0xFF]


# verification is not re-entrant: a new key's packed table is one buffer, reused, like
# its Jacobian scratch and the event list (emptied with del [:], which keeps its room: appends then allocate
# nothing, where a list grown afresh each time asked for a 1 KB block per verification)
_qbuf = bytearray(64 << (W_Q - 2))
_jbuf = bytearray(96 << (W_Q - 2))
_EV = [0] * 160  # a verification has at most ~105 events
del _EV[:]


def _gtable():
    global _gtab
    if _gtab is None:
        _gtab = _tables(GX, GY, W_G, SPLIT)
    return _gtab


def init():
    """Build G's tables now (2 KB, ~8 ms here) rather than at the first verification:
    call it at boot, while the heap is still in one piece."""
    _gtable()


@micropython.native
def _msm(ev, tabs):
    """Sum of the digits * points of the events ev (from _wnaf, any order; at most 8
    tables, tabs[index] packed). Horner's rule from the top position down: the doublings
    between two positions run as one block, an addition per event. Jacobian (X, Y, Z);
    Z == 0 is the point at infinity."""
    ev.sort(reverse=True)
    end = _END
    ev.append(end)  # position 0: the doublings down to position 0, then stop
    p = P
    from_bytes = int.from_bytes
    X = Y = 1
    Z = 0
    cur = 0
    for e in ev:
        i = e >> 16
        if Z and cur > i:
            X, Y, Z = _dbln(X, Y, Z, cur - i)  # one call per block of doublings
        if e & end:
            break
        cur = i
        tb = tabs[(e >> 12) & 7]
        o = e & 2047
        x2 = from_bytes(tb[o:o + 32], "big")
        y2 = from_bytes(tb[o + 32:o + 64], "big")
        if e & 2048:  # a negative digit: minus the point
            y2 = p - y2
        if Z == 0:
            X, Y, Z = x2, y2, 1
            continue
        # mixed addition (X, Y, Z) + (x2, y2)
        zz = Z * Z % p
        h = (x2 * zz - X) % p
        r = (y2 * (Z * zz % p) - Y) % p
        if h == 0:
            if r == 0:   # the same point: double it
                X, Y, Z = _dbln(X, Y, Z, 1)
            else:        # P + (-P)
                X = Y = 1
                Z = 0
            continue
        hh = h * h % p
        hhh = h * hh % p
        v = X * hh % p
        Z = Z * h % p
        X3 = (r * r - hhh - v - v) % p
        Y = (r * (v - X3) - Y * hhh) % p
        X = X3
    return X, Y, Z


def _split_terms(k, w, first, ev):
    """Events of k * P with P's split tables first, first + 1, ...: k cut into SPLIT
    pieces of 256/SPLIT bits."""
    step = 256 // SPLIT
    mask = (1 << step) - 1
    for j in range(SPLIT):
        _wnaf((k >> (step * j)) & mask, w, step, (first + j) << 12, ev)


def _finish(X, Z, r):
    if Z == 0:
        return False
    p = P
    z2 = Z * Z % p
    # x(R) mod n == r, x(R) = X/Z^2 in [0, p): x(R) is r, or r + n when that is below p
    if X == r * z2 % p:
        return True
    return r + N < p and X == (r + N) * z2 % p


def _scalars(digest, sig):
    """(r, u1, u2) or None if r, s are out of range."""
    n = N
    r = int.from_bytes(sig[0:32], "big")
    s = int.from_bytes(sig[32:64], "big")
    if not (0 < r < n and 0 < s < n):
        return None
    w = inverse(s, n)
    return r, int.from_bytes(digest, "big") % n * w % n, r * w % n


def _begin(digest, sig):
    """(r, u2, events holding u1*G's digits), or None if r, s are out of range: the
    start every verification shares."""
    sc = _scalars(digest, sig)
    if sc is None:
        return None
    r, u1, u2 = sc
    ev = _EV
    del ev[:]
    _split_terms(u1, W_G, 0, ev)
    return r, u2, ev


def verify_point(qx, qy, digest, sig):
    """verify_digest with the public key already decoded and checked (on the curve)."""
    b = _begin(digest, sig)
    if b is None:
        return False
    r, u2, ev = b
    cnt = 1 << (W_Q - 2)
    _affine(_jbuf, cnt, _odd_multiples(qx, qy, W_Q, _jbuf), _qbuf)
    _wnaf(u2, W_Q, 256, SPLIT << 12, ev)
    tabs = _gtable() + [_qbuf]
    X, Y, Z = _msm(ev, tabs)
    return _finish(X, Z, r)


def prepare(qx, qy):
    """Precomputation for a key that verifies often (an issuer key): its split tables
    (2 KB of heap). Verifying with it needs 64 doublings instead of 256."""
    return _tables(qx, qy, W_Q, SPLIT)


def verify_prepared(tabs, digest, sig):
    """verify_digest with a key from prepare()."""
    if len(sig) != 64 or len(digest) != 32:
        return False
    b = _begin(digest, sig)
    if b is None:
        return False
    r, u2, ev = b
    _split_terms(u2, W_Q, SPLIT, ev)
    X, Y, Z = _msm(ev, _gtable() + [tabs[j] for j in range(SPLIT)])  # any sequence, like before
    return _finish(X, Z, r)


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
    return verify_point(q[0], q[1], digest, sig)


def verify(pub, msg, sig):
    """True if sig (64 bytes r||s) is a valid ES256 signature of `msg` by `pub` (65 bytes)."""
    return verify_digest(pub, hashlib.sha256(msg).digest(), sig)


def _aff_of(j):
    """Affine (x, y) of a Jacobian (X, Y, Z) (tests)."""
    X, Y, Z = j
    zi = inverse(Z, P)
    return X * zi * zi % P, Y * zi * zi * zi % P
