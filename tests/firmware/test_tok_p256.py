# P-256 ECDSA inside MicroPython: a NIST vector, the input checks, and the special cases of
# the addition formulas reached through real verifications (Q = G: P + P; Q = -G: P + (-P)).
import hashlib

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


def test_addition_special_cases_directly():
    gx, gy = p256.GX, p256.GY
    inf = (1, 1, 0)
    assert p256._jadd(*(inf + (gx, gy, 1))) == (gx, gy, 1)
    assert p256._jadd(gx, gy, 1, *inf) == (gx, gy, 1)
    X, Y, Z = p256._jadd(gx, gy, 1, gx, gy, 1)     # P + P falls back to doubling
    assert (X, Y, Z) == p256._jdouble(gx, gy, 1)
    z2 = Z * Z % P
    assert X * p256.inverse(z2, P) % P == X2G
    assert p256._jadd(gx, gy, 1, gx, P - gy, 1)[2] == 0   # P + (-P) = infinity
    # the same point in another Jacobian representation (Z = 2) still doubles
    assert p256._jadd(gx * 4 % P, gy * 8 % P, 2, gx, gy, 1)[2] != 0


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
    s = r * p256.inverse(2, N) % N  # u2 = r/s = 2 -> R = 2G
    assert p256.verify_digest(pub_of(p256.GX, p256.GY), be(0), be(r) + be(s))
    assert p256.verify_digest(pub_of(p256.GX, p256.GY), be(N), be(r) + be(s))  # e = n


def test_wnaf_reconstructs_the_scalar():
    buf = bytearray(257)
    for k in (1, 2, 3, 31, 32, 33, 0xFFFF, N - 1, 2 ** 255, 2 ** 256 - 1, 0x5A5A << 200):
        for w in (4, 5, 6):
            p256._wnaf(k, w, buf, 256)
            total = 0
            for i in range(256, -1, -1):
                d = buf[i]
                total = total * 2 + (d - 256 if d >= 128 else d)
            assert total == k, (k, w)
