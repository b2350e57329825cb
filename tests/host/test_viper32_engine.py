"""The viper P-256 engine (firmware/p256_engine.py) under 32-bit machine-word rules
(tools/viper32.py, strict: no intermediate may leave 32 bits), against Python integers on
random and extreme inputs; bit for bit against the unix port; a whole verification."""

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.mp import run_code
from tools import gen_p256 as gen
from tools import p256_programs as prg
from tests.host.test_viper32 import _fns

P = gen.P
R = gen.R                      # Montgomery's radix: MUL is a b / R (mod p)
RI = pow(R, -1, P)
BOUND = gen.BOUND              # every register value is below it (12 2^256)
# BOUND - 1 has all-ones limbs below the top one: every column sum near its largest
EXTREME = [0, 1, P - 1, P, P + 1, 2**256 - 1, 2**256, 2**259, BOUND - 1, 11 * P,
           BOUND - 2**247, int("1FFF" * 19, 16) * 2**13 % BOUND]


ENGINE = _fns("firmware/p256_engine.py", strict=True)["run"]


class _Regs:
    def __init__(self):
        self.ws = bytearray(2 * gen.WORDS)

    def set(self, r, v):
        """A raw register value (below BOUND) as its 20 limbs."""
        o = 2 * (gen.REG0 + gen.STRIDE * r)
        self.ws[o:o + 40] = b"".join(x.to_bytes(2, "little") for x in gen.limbs(v))

    def get(self, r):
        o = 2 * (gen.REG0 + gen.STRIDE * r)
        lm = [int.from_bytes(self.ws[o + 2 * i:o + 2 * i + 2], "little") for i in range(20)]
        assert all(x < 2**13 for x in lm), lm       # normalized limbs
        return sum(x << (13 * i) for i, x in enumerate(lm))

    def mset(self, r, v):
        """A field element into a register in Montgomery form (v R mod p)."""
        self.set(r, v * R % P)

    def mget(self, r):
        return self.get(r) * RI % P

    def consts(self):
        self.mset(prg.ONE, 1)
        self.set(prg.R2, R * R % P)
        self.set(prg.P1, 1)
        self.set(prg.BB, prg.B * R % P)

    def stage(self, i, v):
        o = 2 * gen.STG + 32 * i
        self.ws[o:o + 32] = v.to_bytes(32, "little")

    def staged(self, i):
        o = 2 * gen.STG + 32 * i
        return int.from_bytes(self.ws[o:o + 32], "little")

    def run(self, ops, n=1, table=None, ret=True):
        self.ws[0], self.ws[1] = n & 0xFF, n >> 8
        return ENGINE(self.ws, 0, bytearray(prg.asm(ops, ret)), table or self.ws)


FIELD = {"MUL": lambda a, b: a * b * RI, "SQR": lambda a, b: a * a * RI}   # SQR's b: repeats
FIELD.update({name: (lambda al, be: lambda a, b: al * a + be * b)(*ab)
              for name, ab in prg.LIN.items()})


def _field_op(name, a, b):
    r = _Regs()
    r.set(3, a)
    r.set(4, b)
    r.run([(getattr(prg, name), 5, 3, 0 if name == "SQR" else 4)])
    out = r.get(5)
    assert out < BOUND, (name, a, b)         # the register invariant
    assert out % P == FIELD[name](a, b) % P, (name, a, b)
    return out


@pytest.mark.parametrize("name", sorted(FIELD))
def test_engine_field_ops_extreme_inputs(name):
    for a in EXTREME:
        for b in EXTREME:
            _field_op(name, a, b)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(FIELD)), st.integers(0, BOUND - 1), st.integers(0, BOUND - 1))
def test_engine_field_ops_random_inputs(name, a, b):
    _field_op(name, a, b)


def test_engine_aliasing_and_the_zero_check():
    r = _Regs()
    for a in (P - 1, BOUND - 1, 12345):
        r.set(3, a)
        r.run([(prg.MUL, 3, 3, 3)])                 # d = a = b
        assert r.get(3) % P == a * a * RI % P
    for v, zero in ((0, True), (P, True), (10 * P, True), (11 * P, True), (1, False),
                    (P - 1, False), (2**256, False), (P + 1, False)):
        r.set(6, v)
        assert (r.run([prg.zfull(6)]) != 0) == zero, v
        if zero:   # the quick check never misses a zero
            assert r.run([(prg.ZCHK, 0, 6, 0)]) != 0, v
    r.set(6, 12345)
    assert r.run([(prg.ZCHK, 0, 6, 0)]) == 0


def _aff(X, Y, Z):
    zi = pow(Z, P - 2, P)
    return X * zi * zi % P, Y * zi * zi * zi % P


def test_engine_programs_doubling_and_odd_multiples():
    gx, gy = 0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296, \
        0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5
    r = _Regs()
    r.consts()
    r.mset(prg.X, gx)
    r.mset(prg.Y, gy)
    r.mset(prg.Z, 1)
    r.run(prg.dbl_ops(), n=3, ret=False)           # 8G
    x8 = _aff(r.mget(0), r.mget(1), r.mget(2))
    # the odd multiples program: its rows are G, 3G, 5G, ... (Montgomery forms); 8G = 5G +
    # 3G checks the rows. Q comes in plain in the first row, the product to invert goes
    # out plain in staging row 0 and its inverse comes back there
    table = bytearray(64 * prg.CNT)
    table[0:32], table[32:64] = gx.to_bytes(32, "little"), gy.to_bytes(32, "little")
    assert r.run(prg.qtable_ops(prg.CNT, 1), n=0, table=table) == 0
    z = r.staged(0)
    assert 0 < z < P
    r.stage(0, pow(z, -1, P))
    assert r.run(prg.qtable_ops(prg.CNT, 2), n=0, table=table) == 0
    raw = [(int.from_bytes(table[64 * k:64 * k + 32], "little"),
            int.from_bytes(table[64 * k + 32:64 * k + 64], "little")) for k in range(8)]
    assert all(0 <= v < P for row in raw for v in row)
    rows = [(x * RI % P, y * RI % P) for x, y in raw]
    assert rows[0] == (gx, gy)
    (x3, y3), (x5, y5) = rows[1], rows[2]
    lam = (y5 - y3) * pow(x5 - x3, P - 2, P) % P
    x = (lam * lam - x3 - x5) % P
    assert x == x8[0]


def test_engine_values_in_and_out_through_the_staging_rows():
    r = _Regs()
    r.consts()
    vals = [0, 1, P - 1, 2**255 + 12345]
    for i, v in enumerate(vals[:3]):
        r.stage(i, v)
    assert r.run([(prg.LDT, 3, 0, prg.W0 + i) for i in range(3)]) == 0
    assert [r.get(3)] == [vals[2]]     # LDT: the plain digits as limbs, unchanged
    for v in vals:
        r.stage(0, v)
        r.run([(prg.LDT, 3, 0, prg.W0), (prg.MUL, 3, 3, prg.R2)])
        assert r.mget(3) == v % P                  # into Montgomery form
        r.run([(prg.MUL, prg.TG, 3, prg.P1), (prg.STT, 0, prg.TG, prg.W0 + 1)])
        assert r.staged(1) == v % P                # and out, canonical
    for v in (BOUND - 1, P, 2 * P - 1, 2**256):    # STT reduces any register to [0, p)
        r.set(5, v)
        r.run([(prg.STT, 0, 5, prg.W0 + 2)])
        assert r.staged(2) == v % P, v


def test_engine_matches_the_unix_port_bit_for_bit():
    rng = random.Random(7)
    cases = [(rng.choice(sorted(FIELD)), rng.randrange(BOUND), rng.randrange(BOUND))
             for _ in range(20)] + [("MUL", BOUND - 1, BOUND - 1), ("SUB2", 0, BOUND - 1)]
    ours = []
    for name, a, b in cases:
        ours.append(_field_op(name, a, b))
    code = "import p256_engine as e\nws = bytearray(2 * e.WORDS)\n"
    code += "def go(o, a, b, rb):\n"
    code += "    r = lambda k: 2 * (e.REG0 + e.STRIDE * k)\n"
    code += "    for i in range(20):\n"
    code += "        ws[r(3) + 2 * i] = (a >> 13 * i) & 255\n"
    code += "        ws[r(3) + 2 * i + 1] = (a >> 13 * i + 8) & 31\n"
    code += "        ws[r(4) + 2 * i] = (b >> 13 * i) & 255\n"
    code += "        ws[r(4) + 2 * i + 1] = (b >> 13 * i + 8) & 31\n"
    code += "    e.run(ws, 0, bytes([o, 5, 3, rb, 0, 1, 0, 0]), ws)\n"
    code += "    print(sum((ws[r(5) + 2 * i] | ws[r(5) + 2 * i + 1] << 8) << 13 * i "
    code += "for i in range(20)))\n"
    for name, a, b in cases:
        code += "go(%d, %d, %d, %d)\n" % (getattr(prg, name), a, b, 0 if name == "SQR" else 4)
    got = [int(x) for x in run_code(code, heap="1M").split()]
    assert got == ours


def test_engine_inverse_against_python():
    inv = _fns("firmware/p256_engine.py", strict=True)["inv"]
    n = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    rng = random.Random(3)
    for m in (P, n):
        for a in [1, 2, m - 1, m - 2, 2**255, 2**128 + 1, 3] + [rng.randrange(1, m) for _ in range(8)]:
            ws = bytearray(2 * gen.WORDS)
            ws[4:36] = a.to_bytes(32, "little")
            ws[36:68] = m.to_bytes(32, "little")
            ws[68:100] = (1).to_bytes(32, "little")
            ws[100:132] = bytes(32)
            ws[144:146] = ((-pow(m, -1, 2**16)) % 2**16).to_bytes(2, "little")
            assert inv(ws, 0, bytearray(m.to_bytes(32, "little"))) == 1
            assert int.from_bytes(ws[100:132], "little") == pow(a, -1, m), (m, a)
    ws = bytearray(2 * gen.WORDS)          # a = 0: refused, and it stops
    ws[36:68] = P.to_bytes(32, "little")
    assert inv(ws, 0, bytearray(P.to_bytes(32, "little"))) == 0


def _naf_ref(k, w):
    out = []
    while k:
        if k & 1:
            d = k & ((1 << w) - 1)
            if d >= 1 << (w - 1):
                d -= 1 << w
            k -= d
        else:
            d = 0
        out.append(d)
        k >>= 1
    return out


def test_engine_wnaf_against_python():
    from tools import gen_p256_msm as msm
    wn = _fns("firmware/p256_engine.py", strict=True)["wnaf"]
    rng = random.Random(5)
    for k in [0, 1, 2**256 - 1, 2**255, (1 << 256) - (1 << 100)] + [rng.randrange(2**256)
                                                                  for _ in range(6)]:
        for w, nbits, cnt in ((5, 256, 1), (7, 64, 4), (5, 64, 4)):
            first = 4 if nbits == 256 else 0   # positions above 64: stream 4 only
            ws = bytearray(2 * msm.WORDS)
            ws[msm.DIGB:msm.DIG2 + 192] = b"\x55" * (msm.DIG2 + 192 - msm.DIGB)  # cleared first
            wn(ws, 0, bytearray(k.to_bytes(36, "little")),
               first | (w << 3) | (nbits << 7) | (cnt << 16) | (1 << 24))
            for j in range(8):
                piece = (k >> (nbits * (j - first))) & ((1 << nbits) - 1) \
                    if first <= j < first + cnt else 0
                if nbits == 256 and j != 4:
                    continue
                got = [ws[msm.DIGB + 8 * i + j] if i < msm.LOW else ws[msm.DIG2 + i - msm.LOW]
                       for i in range(nbits + 1)]
                got = [d - 256 if d >= 128 else d for d in got]
                want = _naf_ref(piece, w)
                assert got == want + [0] * (nbits + 1 - len(want)), (k, w, j)


def test_engine_whole_verification_under_32_bit_rules():
    """u1 G + u2 Q by the engine's MSM loop, tables and inverse, all under the 32-bit
    rules, against Python integers."""
    from tools import gen_p256_msm as msm
    fns = _fns("firmware/p256_engine.py", strict=True)
    run, inv, wn = fns["run"], fns["inv"], fns["wnaf"]
    n = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    rng = random.Random(11)
    q = (prg.GX, prg.GY)
    for _ in range(5):                        # Q = 5^k G for some k: any curve point will do
        q = prg._add(q, prg._add(q, q))
    u1, u2 = rng.randrange(n), rng.randrange(n)
    ws = bytearray(2 * msm.WORDS)
    r = _Regs()
    r.ws = ws
    r.consts()
    qtab = bytearray(64 * prg.CNT)            # Q's table: part 1, the inverse, part 2
    qtab[0:32], qtab[32:64] = q[0].to_bytes(32, "little"), q[1].to_bytes(32, "little")
    r.run(prg.qtable_ops(prg.CNT, 1), n=0, table=qtab)
    z = r.staged(0)
    ws[4:36], ws[36:68] = z.to_bytes(32, "little"), P.to_bytes(32, "little")
    ws[68:100], ws[100:132] = (1).to_bytes(32, "little"), bytes(32)
    ws[144:146] = (1).to_bytes(2, "little")
    assert inv(ws, 0, bytearray(P.to_bytes(32, "little"))) == 1
    r.stage(0, int.from_bytes(ws[100:132], "little"))
    r.run(prg.qtable_ops(prg.CNT, 2), n=0, table=qtab)
    wn(ws, 0, bytearray(u1.to_bytes(36, "little")),
       0 | (prg.W_G << 3) | (64 << 7) | (4 << 16) | (1 << 24))
    wn(ws, 0, bytearray(u2.to_bytes(36, "little")), 4 | (5 << 3) | (256 << 7) | (1 << 16))
    ws[2 * msm.MTOP], ws[2 * msm.MTOP + 1] = 0, 1        # top position 256
    ws[2] = 1                                            # MSM mode
    assert run(ws, 0, bytearray(prg.gtable() + msm.PROG_BYTES), qtab) == 1
    X, Y, Z = (r.mget(k) for k in (prg.X, prg.Y, prg.Z))
    want = None
    for k, pt in ((u1, (prg.GX, prg.GY)), (u2, q)):
        acc = None
        for bit in bin(k)[2:]:
            acc = prg._add(acc, acc) if acc else None
            if bit == "1":
                acc = prg._add(acc, pt) if acc else pt
        want = prg._add(want, acc) if want else acc
    assert _aff(X, Y, Z) == want
    # the verification's end (FIN): X == r Z^2 for r = x(R), not for r + 1; Z = 0 never
    ws[2] = 0                                            # out of MSM mode
    r.stage(0, want[0])
    assert r.run(prg.fin_ops()) == prg.FIN_EQ
    r.stage(0, (want[0] + 1) % P)
    assert r.run(prg.fin_ops()) == 0
    r.set(prg.Z, 0)
    r.stage(0, want[0])
    assert r.run(prg.fin_ops()) == prg.FIN_INF


def test_engine_decompress_program():
    """DECOMP: y from x on the curve (the cnf key), 0 for an x off the curve; NEGY: p - y."""
    r = _Regs()
    r.consts()
    progs = prg.programs()
    r.stage(0, prg.GX)
    assert r.run(prg.decomp_ops()) == prg.DEC_OK
    y = r.staged(1)
    assert y in (prg.GY, P - prg.GY)
    assert ENGINE(r.ws, 0, bytearray(progs["NEGY"]), r.ws) == 0
    assert r.staged(1) == P - y
    x = 1
    while pow((x ** 3 - 3 * x + prg.B) % P, (P - 1) // 2, P) == 1:   # an x off the curve
        x += 1
    r.stage(0, x)
    assert r.run(prg.decomp_ops()) == 0
