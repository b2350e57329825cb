"""The P-256 engine's programs: point formulas as sequences of field operations.

Registers hold Montgomery forms (x R mod p, R = 2^260: MUL is a b / R), and so do the
tables' rows (G's constants and the keys' tables): values come in and go out through
the staging rows (LDT/STT rows from W0, plain canonical digits) with a MUL by R2
(R^2 mod p: x -> x R) or by P1 (a plain 1: x R -> x).

tools/gen_p256.py assembles them into firmware/p256_engine.py as bytes constants (so the
device builds nothing at import). Each operation is 4 bytes (op, d, a, b): d, a, b are
register numbers (or, for LDT/STT, b is a table row). Register numbers are those of
firmware/tokens/p256.py. An operation may write a register it reads (d == a or b).
"""

X, Y, Z = 0, 1, 2
T1, T2, T3, T4, T5, T6 = 3, 4, 5, 6, 7, 8
X2, Y2, ONE, ZERO = 9, 10, 11, 12
QX, QY, ZC = 13, 14, 15
J0 = 16     # a new key's odd multiples' Z (their X, Y wait in the table's rows): 16..23
ACC0 = 24   # Montgomery's trick: running products, 24..31
R2, P1, TG = 32, 33, 34   # R^2 mod p and a plain 1 (into and out of Montgomery form), a temp
BB = 35     # the curve's b (Montgomery form)
NREG = 36
CNT = 8     # odd multiples in a key's table (window 5)

OPS = ("END", "MUL", "SQR", "ADD", "SUB", "SUB2", "SUB8", "LIN33", "LIN41", "MOV", "LDT",
       "STT", "ZCHK")
(END, MUL, SQR, ADD, SUB, SUB2, SUB8, LIN33, LIN41, MOV, LDT, STT, ZCHK) = range(len(OPS))


def zfull(r):
    """The full zero test of register r: STT with d = 1 (both reduce r to [0, p) first, so
    they share the engine's code). Is r = 0 mod p? Outside the MSM the program then stops
    and returns the byte offset after this operation; in the MSM the controller reads f."""
    return (STT, 1, r, 0)
W0 = 128    # LDT/STT rows from W0 on: the workspace's staging rows (values in and out)
# the linear operations d = alpha a + beta b: (alpha, beta)
LIN = {"ADD": (1, 1), "SUB": (1, -1), "SUB2": (1, -2), "SUB8": (1, -8), "LIN33": (3, -3),
       "LIN41": (4, -1)}


def asm(ops, ret=True):
    """Program bytes from [(op, d, a, b)], ended by END (ret: run once and return)."""
    b = bytearray(4 * len(ops) + 4)
    for i, o in enumerate(ops):
        if len(o) != 4 or not all(0 <= v < 256 for v in o):
            raise ValueError("bad operation %r" % (o,))
        b[4 * i:4 * i + 4] = bytes(o)
    b[4 * len(ops) + 1] = 1 if ret else 0
    return bytes(b)


def dbl_ops():
    """2(X, Y, Z), a = -3: dbl-2001-b (3M + 5S): delta = Z^2, gamma = Y^2, beta = X gamma,
    alpha = 3(X - delta)(X + delta), X3 = alpha^2 - 8 beta, Z3 = (Y + Z)^2 - gamma - delta,
    Y3 = alpha (4 beta - X3) - 8 gamma^2; the 3 goes into the first factor (3X - 3 delta).
    Z = 0 (infinity) stays 0."""
    return [(SQR, T1, Z, 0), (SQR, T2, Y, 0), (MUL, T3, X, T2),
            (LIN33, T4, X, T1), (ADD, T5, X, T1), (MUL, T6, T4, T5),
            (ADD, T5, Y, Z), (SQR, T5, T5, 0), (SUB, Z, T5, T2), (SUB, Z, Z, T1),
            (SQR, T4, T6, 0), (SUB8, X, T4, T3), (LIN41, T4, T3, X), (MUL, T5, T6, T4),
            (SQR, T2, T2, 0), (SUB8, Y, T5, T2)]


def madd_ops(check, part=None):
    """(X, Y, Z) + (X2, Y2) affine, madd-2007-bl's order: 8M + 3S. With check, stop where
    h might be 0 mod p (ZCHK: its low limb is 0 or >= 0x1FF0, 17 in 8,192), leaving X, Y,
    Z as they were, h in T2 and r in T4: the caller decides (HZERO, RZERO) and finishes
    with the rest (part 2)."""
    head = [(SQR, T1, Z, 0), (MUL, T2, X2, T1), (SUB, T2, T2, X), (MUL, T3, Z, T1),
            (MUL, T4, Y2, T3), (SUB, T4, T4, Y)]
    rest = [(SQR, T5, T2, 0), (MUL, T6, T2, T5), (MUL, T3, X, T5), (MUL, Z, Z, T2),
            (SQR, T1, T4, 0), (SUB, T1, T1, T6), (SUB2, X, T1, T3),
            (SUB, T3, T3, X), (MUL, T3, T4, T3), (MUL, T6, Y, T6), (SUB, Y, T3, T6)]
    if part == 2:
        return rest
    return head + ([(ZCHK, 0, T2, 0)] if check else []) + rest


def load_ops(neg, dx, dy):
    """A table row (the n-th) into dx, dy; negated (y = 0 - y) for a negative digit."""
    ops = [(LDT, dx, 0, 0), (LDT, dy, 0, 1)]
    return ops + [(SUB, dy, ZERO, dy)] if neg else ops


def _sqn(r, k):
    return [(SQR, r, r, k)] if k > 1 else [(SQR, r, r, 0)] * k


def pow_ops(a, r, sqrt):
    """r = a^(p-2) (the inverse) or a^((p+1)/4) (a square root), by the usual chain of
    x_k = a^(2^k - 1): 255 squarings and 12 multiplications (253 and 9 for the root)."""
    x2, x3, x6, x12, x15, x30, x32 = T1, T2, T3, T4, T5, T6, ZC
    ops = ([(SQR, x2, a, 0), (MUL, x2, x2, a), (SQR, x3, x2, 0), (MUL, x3, x3, a),
            (MOV, x6, x3, 0)] + _sqn(x6, 3) + [(MUL, x6, x6, x3), (MOV, x12, x6, 0)] +
           _sqn(x12, 6) + [(MUL, x12, x12, x6), (MOV, x15, x12, 0)] + _sqn(x15, 3) +
           [(MUL, x15, x15, x3), (MOV, x30, x15, 0)] + _sqn(x30, 15) +
           [(MUL, x30, x30, x15), (MOV, x32, x30, 0)] + _sqn(x32, 2) +
           [(MUL, x32, x32, x2), (MOV, r, x32, 0)])
    if sqrt:   # (p+1)/4 = 2^254 - 2^222 + 2^190 + 2^94
        return ops + _sqn(r, 32) + [(MUL, r, r, a)] + _sqn(r, 96) + [(MUL, r, r, a)] + \
            _sqn(r, 94)
    # p - 2: 32 ones, 31 zeros and a one, 96 zeros, 94 ones, 0, 1
    return ops + _sqn(r, 32) + [(MUL, r, r, a)] + _sqn(r, 128) + [(MUL, r, r, x32)] + \
        _sqn(r, 32) + [(MUL, r, r, x32)] + _sqn(r, 30) + [(MUL, r, r, x30)] + \
        _sqn(r, 2) + [(MUL, r, r, a)]


def qtable_ops(cnt, part):
    """The odd multiples Q, 3Q, .. of (QX, QY) as affine rows x, y of the table t (n = 0):
    D = 2Q = (X, Y, zc) is affine on the isomorphic curve with coordinates scaled by zc
    (x -> x zc^2, y -> y zc^3; the addition formulas do not involve a or b), so each step
    is a mixed addition; then one inversion for all (Montgomery's trick). kQ != O for
    k < n, so no step meets a special case. Each step's X, Y wait in its rows (STT: reduced
    mod p), its Z in a register. part 1 stops before the inversion (X2 holds the product to
    invert: the caller inverts it), part 2 starts after it (Y2 holds its inverse)."""
    # Q's x, y come in plain, in the table's rows 0 and 1 (row 0 is Q's row later)
    ops = [(LDT, QX, 0, 0), (LDT, QY, 0, 1), (MUL, QX, QX, R2), (MUL, QY, QY, R2),
           (MOV, X, QX, 0), (MOV, Y, QY, 0), (MOV, Z, ONE, 0)] + dbl_ops()
    ops += [(MOV, X2, X, 0), (MOV, Y2, Y, 0), (MOV, ZC, Z, 0),
            (SQR, T1, ZC, 0), (MUL, X, QX, T1), (MUL, T2, T1, ZC), (MUL, Y, QY, T2),
            (MOV, Z, ONE, 0)]
    for i in range(cnt):
        if i:
            ops += madd_ops(False)
        ops += [(STT, 0, X, 2 * i), (STT, 0, Y, 2 * i + 1), (MOV, J0 + i, Z, 0)]
    ops.append((MOV, ACC0, ONE, 0))
    for i in range(1, cnt):
        ops.append((MUL, ACC0 + i, ACC0 + i - 1, J0 + i - 1))
    ops += [(MUL, X2, ACC0 + cnt - 1, J0 + cnt - 1), (MUL, X2, X2, ZC)]
    if part == 1:   # the product to invert goes out plain, in staging row 0
        return ops + [(MUL, TG, X2, P1), (STT, 0, TG, W0)]
    inv = Y2  # 1 / (zc Z_0 ... Z_7), then 1 / (zc Z_0 ... Z_i) going down
    ops = [(LDT, inv, 0, W0), (MUL, inv, inv, R2)]   # its inverse comes in plain
    for i in range(cnt - 1, -1, -1):
        ops += [(MUL, X, inv, ACC0 + i), (MUL, inv, inv, J0 + i), (SQR, Y, X, 0),
                (LDT, T1, 0, 2 * i), (MUL, Z, T1, Y), (STT, 0, Z, 2 * i),
                (MUL, Y, Y, X), (LDT, T1, 0, 2 * i + 1), (MUL, Z, T1, Y),
                (STT, 0, Z, 2 * i + 1)]
    return ops


def programs():
    """{name: bytes} of every program the firmware runs."""
    return {
        "DBL": asm(dbl_ops(), False),
        "ADDP": asm(load_ops(False, X2, Y2) + madd_ops(True)),
        "ADDN": asm(load_ops(True, X2, Y2) + madd_ops(True)),
        "SETP": asm(load_ops(False, X, Y) + [(MOV, Z, ONE, 0)]),
        "SETN": asm(load_ops(True, X, Y) + [(MOV, Z, ONE, 0)]),
        "HZERO": asm([zfull(T2)]),
        "RZERO": asm([zfull(T4)]),
        "ADDREST": asm(madd_ops(True, 2)),
        "QTAB1": asm(qtable_ops(CNT, 1)),
        "QTAB2": asm(qtable_ops(CNT, 2)),
        # a cnf key's y from x (docs/tokens.md): x plain in staging row 0; y = (x^3 - 3x +
        # b)^((p+1)/4) out in row 1; returns DEC_OK if y^2 = x^3 - 3x + b (x is on the
        # curve), else 0. NEGY: row 1 = p - y (the other root)
        "DECOMP": asm(decomp_ops()),
        "NEGY": asm([(SUB, T1, ZERO, QY), (MUL, TG, T1, P1), (STT, 0, TG, W0 + 1)]),
        # the verification's end, x(R) = r: r comes in plain in staging row 0; returns
        # FIN_INF (the zero test of Z fired: the point at infinity), FIN_EQ (X = r Z^2 mod p)
        # or 0 (neither)
        "FIN": asm(fin_ops()),
        # a point in and out (prepare(): 2^k Q)
        "IMP3": asm([(LDT, X, 0, W0), (LDT, Y, 0, W0 + 1), (LDT, Z, 0, W0 + 2), (MUL, X, X, R2),
                     (MUL, Y, Y, R2), (MUL, Z, Z, R2)]),
        "OUT3": asm(out_ops((X, Y, Z))),
    }


def decomp_ops():
    return ([(LDT, QX, 0, W0), (MUL, QX, QX, R2), (SQR, T1, QX, 0), (MUL, T1, T1, QX),
             (LIN33, T2, QX, ZERO), (SUB, T1, T1, T2), (ADD, QX, T1, BB)] +
            pow_ops(QX, QY, True) +
            [(MUL, TG, QY, P1), (STT, 0, TG, W0 + 1), (SQR, T1, QY, 0), (SUB, T2, T1, QX),
             zfull(T2)])


DEC_OK = 4 * len(decomp_ops())   # the byte offset after DECOMP's final zero test


def fin_ops():
    return [zfull(Z), (LDT, T5, 0, W0), (MUL, T5, T5, R2), (SQR, T1, Z, 0),
            (MUL, T2, T5, T1), (SUB, T3, X, T2), zfull(T3)]


FIN_INF, FIN_EQ = 4, 4 * 7   # the byte offsets after fin_ops()'s two zero tests


def out_ops(regs):
    """Registers out, plain and canonical, into staging rows 0, 1, .."""
    ops = []
    for i, r in enumerate(regs):
        ops += [(MUL, TG, r, P1), (STT, 0, TG, W0 + i)]
    return ops


# ---- G's tables: constants, so the generator computes them (affine, canonical)
P = 2**256 - 2**224 + 2**192 + 2**96 - 1
B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
GX = 0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296
GY = 0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5
W_G = 6          # G's window: 16 odd multiples a table (4 KB in all: constants)
SPLIT = 4        # G's scalar in 4 pieces of 64 bits: tables of G, 2^64 G, 2^128 G, 2^192 G


def _add(a, b):
    (x1, y1), (x2, y2) = a, b
    if a == b:
        lam = 3 * (x1 * x1 - 1) * pow(2 * y1, -1, P) % P
    else:
        lam = (y2 - y1) * pow(x2 - x1, -1, P) % P
    x3 = (lam * lam - x1 - x2) % P
    return x3, (lam * (x1 - x3) - y1) % P


def gtable(w=W_G, split=SPLIT):
    """bytes: for each piece j, the odd multiples 1, 3, .. (2^(w-1) - 1) of 2^(256 j/split) G
    as rows of x then y in Montgomery form (x 2^260 mod p), 32 little-endian bytes each."""
    out = bytearray()
    base = (GX, GY)
    for j in range(split):
        if j:
            for _ in range(256 // split):
                base = _add(base, base)
        two = _add(base, base)
        pt = base
        for k in range(1 << (w - 2)):
            if k:
                pt = _add(pt, two)
            out += (pt[0] * 2**260 % P).to_bytes(32, "little") + \
                (pt[1] * 2**260 % P).to_bytes(32, "little")
    return bytes(out)
