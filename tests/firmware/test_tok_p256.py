# mp-path: tests/firmware  (the bignum reference verifier, p256_ref.py, is the oracle)
# P-256 ECDSA inside MicroPython: a NIST vector, the input checks, and the special cases of
# the addition formulas reached through real verifications (Q = G: P + P; Q = -G: P + (-P)).
import hashlib

import p256_ref as ref  # the bignum verifier of before: the oracle
from tokens import p256

PUB = bytes.fromhex(
    "041ccbe91c075fc7f4f033bfa248db8fccd3565de94bbfb12f3c59ff46c271bf83"
    "ce4014c68811f9a21a1fdb2c0e6113e06db7ca93b7404e78dc7ccd5ca89a4ca9")
MSG = bytes.fromhex(
    "5905238877c77421f73e43ee3da6f2d9e2ccad5fc942dcec0cbd25482935faaf416983fe165b1a045ee2"
    "bcd2e6dca3bdf46c4310a7461f9a37960ca672d3feb5473e253605fb1ddfd28065b53cb5858a8ad2817"
    "5bf9bd386a5e471ea7a65c17cc934a9d791e91491eb3754d03799790fe2d308d16146d5c9b0d0debd97"
    "d79ce8")
SIG = bytes.fromhex(
    "f3ac8061b514795b8843e3d6629527ed2afd6b1f6a555a7acabb5e6f79c8c2ac"
    "8bf77819ca05a6b2786c76262bf7371cef97b218e96f175a3ccdda2acc058903")  # CAVP SigGen
X2G = 0x7CF27B188D034F7E8A52380304B51AC3C08969E277F21B35A60B48FC47669978  # x(2G)
P, N = p256.P, p256.N


def be(x):
    return x.to_bytes(32, "big")


def pub_of(x, y):
    return b"\x04" + be(x) + be(y)


def test_nist_vector_and_its_corruptions():
    assert p256.verify(PUB, MSG, SIG)
    assert not p256.verify(PUB, MSG + b"\x00", SIG)
    bad = bytearray(SIG)
    bad[40] ^= 0x10
    assert not p256.verify(PUB, MSG, bytes(bad))
    q = p256.decode_point(PUB)
    tabs = p256.prepare(q[0], q[1])
    d = hashlib.sha256(MSG).digest()
    assert p256.verify_prepared(tabs, d, SIG)
    assert not p256.verify_prepared(tabs, d, bytes(bad))


def test_high_s_twin_is_accepted():
    s = int.from_bytes(SIG[32:], "big")
    assert p256.verify(PUB, MSG, SIG[:32] + be(N - s))


def test_range_checks_on_r_and_s():
    r, s = SIG[:32], SIG[32:]
    for sig in (be(0) + s, r + be(0), be(N) + s, r + be(N), be(P) + s,
                b"\xff" * 32 + s, SIG[:63], SIG + b"\x00", b""):
        assert not p256.verify(PUB, MSG, sig)


def test_public_key_checks():
    x, y = p256.decode_point(PUB)
    assert p256.decode_point(pub_of(x, (y + 1) % P)) is None        # off the curve
    assert p256.decode_point(b"\x04" + bytes(64)) is None            # (0, 0): "infinity"
    assert p256.decode_point(b"\x02" + PUB[1:33]) is None            # compressed form
    assert p256.decode_point(PUB[:64]) is None
    assert p256.decode_point(pub_of(p256.GX, p256.GY)) == (p256.GX, p256.GY)
    assert not p256.verify(pub_of(x, (y + 1) % P), MSG, SIG)
    assert not p256.on_curve(x + P, y) and not p256.on_curve(x, y + P)


def test_decompress():
    assert p256.decompress(p256.GX, p256.GY & 1) == p256.GY
    assert p256.decompress(p256.GX, not (p256.GY & 1)) == P - p256.GY
    assert p256.decompress(P, False) is None
    x = 1
    while p256.decompress(x, False) is not None:
        x += 1
    assert x < 100  # about half of all x have no point; one was found and refused


def _aff(X, Y, Z):
    zi = ref.inverse(Z, P)
    return X * zi * zi % P, Y * zi * zi * zi % P


def _acc():
    """The engine's accumulator (X, Y, Z) as integers mod p."""
    return p256._get(p256.X), p256._get(p256.Y), p256._get(p256.Z)


def _set_acc(X, Y, Z):
    p256._set(p256.X, X)
    p256._set(p256.Y, Y)
    p256._set(p256.Z, Z)


R = 2 ** 260                  # the engine's Montgomery radix: table rows hold x R mod p
RI = ref.inverse(R % P, P)


def _row(x, y):
    return (x * R % P).to_bytes(32, "little") + (y * R % P).to_bytes(32, "little")


def _plain(b):
    return int.from_bytes(b, "little") * RI % P


def test_engine_doubling_and_addition_match_the_bignum_formulas():
    gx, gy = p256.GX, p256.GY
    _set_acc(gx, gy, 1)
    p256._call(p256.DBL, 1, p256._ws)
    assert _aff(*_acc()) == ref._aff_of(ref._jdouble(gx, gy, 1))
    assert _aff(*_acc())[0] == X2G
    _set_acc(gx, gy, 1)
    p256._call(p256.DBL, 5, p256._ws)         # a block of 5 doublings: 32G
    assert _aff(*_acc()) == ref._aff_of(ref._dbln(gx, gy, 1, 5))
    # 2G + G = 3G through the table row of G, and 2G - G = G
    two = ref._jdouble(gx, gy, 1)
    for prog, y in ((p256.ADDP, gy), (p256.ADDN, P - gy)):
        _set_acc(*two)
        assert p256._call(prog, 0, _row(gx, gy)) == 0
        assert _aff(*_acc()) == ref._aff_of(ref._madd(*(two + (gx, y))))


def test_addition_special_cases_directly():
    gx, gy = p256.GX, p256.GY
    # the same point in another Jacobian representation (Z = 2): the engine stops at h = 0
    # with r = 0 too, and leaves the accumulator as it was (the loop then doubles it)
    _set_acc(gx * 4 % P, gy * 8 % P, 2)
    assert p256._call(p256.ADDP, 0, _row(gx, gy)) != 0
    assert p256._call(p256.RZERO, 1, p256._ws) != 0
    assert _acc() == (gx * 4 % P, gy * 8 % P, 2)
    # P + (-P): h = 0 and r != 0
    assert p256._call(p256.ADDN, 0, _row(gx, gy)) != 0
    assert p256._call(p256.RZERO, 1, p256._ws) == 0


def test_odd_multiples_and_affine():
    # the engine's table program gives P, 3P, 5P, ... like plain repeated additions
    gx, gy = p256.GX, p256.GY
    out = p256._odd_table(gx, gy, bytearray(64 * 8))
    pts = [(_plain(out[64 * k:64 * k + 32]), _plain(out[64 * k + 32:64 * k + 64]))
           for k in range(8)]
    two = ref._aff_of(ref._jdouble(gx, gy, 1))
    acc = (gx, gy, 1)
    for k in range(8):
        assert pts[k] == ref._aff_of(acc), k
        acc = ref._madd(*(acc + two))
    # a prepared key's first table holds the same points; the next one 2^64 times them
    tabs = p256.prepare(gx, gy)
    assert bytes(tabs[0:512]) == bytes(out)
    x64 = ref._aff_of(ref._dbln(gx, gy, 1, 64))
    assert _plain(tabs[512:544]) == x64[0]


def test_p_plus_p_inside_a_verification():
    # Q = G, e = r = s = x(2G) mod n: u1 = u2 = 1, so R = G + G is reached by adding G's
    # table entry to an accumulator that already holds G -> the doubling fallback
    r = X2G % N
    sig = be(r) + be(r)
    assert p256.verify_digest(pub_of(p256.GX, p256.GY), be(r), sig)
    assert p256.verify_prepared(p256.prepare(p256.GX, p256.GY), be(r), sig)
    assert not p256.verify_digest(pub_of(p256.GX, p256.GY), be(r + 1), sig)


def test_p_plus_minus_p_inside_a_verification():
    # Q = -G and e = r: u1 = u2, R = u1 G - u1 G = infinity -> must be rejected
    mg = pub_of(p256.GX, P - p256.GY)
    for r, s in ((1234567, 1), (1234567, 7), (X2G % N, 3)):
        assert not p256.verify_digest(mg, be(r), be(r) + be(s))
    tabs = p256.prepare(p256.GX, P - p256.GY)
    assert not p256.verify_prepared(tabs, be(99), be(99) + be(1))


def test_digest_zero_mod_n():
    # e = 0 (u1 = 0): only u2 * Q contributes; with Q = G, r = x(u2 G) mod n
    r = X2G % N
    s = r * ref.inverse(2, N) % N  # u2 = r/s = 2 -> R = 2G
    assert p256.verify_digest(pub_of(p256.GX, p256.GY), be(0), be(r) + be(s))
    assert p256.verify_digest(pub_of(p256.GX, p256.GY), be(N), be(r) + be(s))  # e = n


def _stream(k):
    """(value, positions) of stream k's digits in the engine's workspace."""
    total, pos = 0, []
    for i in range(257):
        if i >= 65 and k != 4:
            continue
        d = p256._ws[p256.eng.DIGB + 8 * i + k if i < 65 else p256.eng.DIGB + 520 + i - 65]
        if d:
            d = d - 256 if d >= 128 else d
            total += d << i
            pos.append((i, d))
    return total, pos


def _check_naf(k, w, pos, nbits):
    last = -100
    for i, d in pos:
        assert d & 1 and -(1 << (w - 1)) < d < 1 << (w - 1), (k, w, d)
        assert i >= last + w, (i, last)                  # w - 1 zeros after a digit
        assert i <= nbits
        last = i


def test_wnaf_reconstructs_the_scalar():
    ks = [0, 1, 2, 3, 31, 32, 33, 0xFFFF, N - 1, 2 ** 255, 2 ** 256 - 1, 0x5A5A << 200,
          (1 << 256) - (1 << 100), 0x8000000000000001 << 190]
    x = 0x9E3779B97F4A7C15
    for _ in range(40):  # pseudo-random scalars with long runs of ones and zeros
        x = x * 0x5851F42D4C957F2D + 1 & (1 << 256) - 1
        ks.append(x)
        ks.append(x | (x >> 3) | (x >> 7))
        ks.append(x & (x >> 5) & (x >> 9))
    for k in ks:
        for w in (4, 5, 7):
            p256._digits(k.to_bytes(36, "little"), 4, w, 256, 1, 1)
            total, pos = _stream(4)
            _check_naf(k, w, pos, 256)
            assert total == k, (k, w)
            for bits in (64, 32):  # the pieces of a split scalar
                cnt = 256 // bits if bits == 64 else 4
                p256._digits(k.to_bytes(36, "little"), 0, w, bits, cnt, 1)
                for j in range(cnt):
                    piece = (k >> (bits * j)) & ((1 << bits) - 1)
                    total, pos = _stream(j)
                    _check_naf(piece, w, pos, bits)
                    assert total == piece, (piece, w, j)


def _inverse_ref(a, m):  # the plain extended Euclid the fast path must agree with
    x0, x1 = 1, 0
    b = m
    while b:
        q = a // b
        a, b = b, a - q * b
        x0, x1 = x1, x0 - q * x1
    if a != 1:
        raise ValueError("not invertible")
    return x0 % m


def _outcome(f, *a):
    try:
        return f(*a)
    except Exception as e:  # noqa: BLE001 - the same exception type is the point
        return type(e)


def test_inverse_agrees_with_plain_euclid():
    x = 0x2545F4914F6CDD1D
    vals = [1, 2, 3, 4, N - 1, N - 2, P - 1, (N + 1) // 2, 2 ** 128, 2 ** 255 % N]
    for _ in range(60):
        x = x * 0x5851F42D4C957F2D + 1 & (1 << 256) - 1
        vals.append(x)
        vals.append(x >> 130)
    for m in (N, P):
        for a in vals:
            a = a % m or 1
            inv = ref.inverse(a, m)
            assert inv == _inverse_ref(a, m) and a * inv % m == 1 and 0 <= inv < m, a
    # outside 0 < a < m, or not invertible: the same answer or the same exception
    for a, m in ((0, N), (N, N), (N + 5, N), (-5, N), (-N - 3, P), (3 * P + 7, P), (6, 9),
                 (4, 8), (0, 1), (5, 1), (1, 0), (3, 0), (3, -7), (0, 0), (12, 35), (35, 12)):
        assert _outcome(ref.inverse, a, m) == _outcome(_inverse_ref, a, m), (a, m)


def _msm_digits(digits, top, kt):
    """Run the engine's multi-scalar loop on explicit digits [(stream, position, d)]."""
    for i in range(8 * 65 + 192):
        p256._ws[p256.eng.DIGB + i] = 0
    for st, i, d in digits:
        p256._ws[p256.eng.DIGB + 8 * i + st if i < 65 else p256.eng.DIGB + 520 + i - 65] = d & 0xFF
    return p256._msm(top, kt)


def test_msm_digits_at_one_position_and_through_infinity():
    gx, gy = p256.GX, p256.GY
    kt = bytearray(64 * 8 * 4)                        # streams 4..7: G's odd multiples
    kt[0:512] = p256._odd_table(gx, gy, bytearray(512))
    assert not _msm_digits([], 10, kt)                # no digits: infinity
    assert _msm_digits([(0, 0, 1), (4, 0, 1)], 0, kt)   # G + G at position 0: doubling
    assert _aff(*_acc()) == ref._aff_of(ref._jdouble(gx, gy, 1))
    # +G - G at position 5 gives infinity, which doubles to infinity; then +G at 0
    assert _msm_digits([(0, 5, 1), (4, 5, -1), (0, 0, 1)], 5, kt)
    assert _aff(*_acc()) == (gx, gy)
    # 3G at position 2 and -G at position 0: 12G - G = 11G = 8G + 3G
    assert _msm_digits([(0, 0, -1), (4, 2, 3)], 3, kt)
    eight = ref._dbln(gx, gy, 1, 3)
    x3, y3 = ref._aff_of(ref._madd(*(ref._jdouble(gx, gy, 1) + (gx, gy))))
    assert _aff(*_acc()) == ref._aff_of(ref._madd(*(eight + (x3, y3))))
    # a digit at the top only, then doublings down to position 0: 2^7 G
    assert _msm_digits([(4, 7, 1)], 9, kt)
    assert _aff(*_acc()) == ref._aff_of(ref._dbln(gx, gy, 1, 7))
