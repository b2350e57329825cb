"""Generate firmware/tokens/p256_engine.py: the viper P-256 field engine.

    python tools/gen_p256.py            # rewrite the engine
    python tools/gen_p256.py --check    # exit 1 if the committed engine is not what this makes

The engine is one viper function, `run`, that executes a small program of field operations
(MUL, SQR, ADD, SUB, HALF, ...) on 256-bit registers held in one preallocated workspace.
Why an interpreter: a call from viper to viper goes through the runtime (~58 ns here, about
10 us on the ESP32 by the x170 model), and a verification does ~3,000 field operations, so
each must not be a call; inlining them into the point formulas would take ~150 KB of
machine code. One interpreter holds each operation's code once (about 20 KB) and a whole
point doubling or addition is one call.

Numbers: a field element is 16 limbs of 16 bits (little-endian uint16, so a register is
the element's 32 little-endian bytes). For a product the operands are re-cut into 20 limbs
of 13 bits: a column of the schoolbook product then sums at most 20 products below 2^26,
under 2^31, so a column is one plain expression with no carry tracking (16-bit limbs need
a second, high-half sum per product: ~20 instructions a product instead of ~9 with
mpy-cross's code). The 40 digits of the product are packed back into 32 16-bit digits and
reduced with P-256's special form (NIST FIPS 186-4 D.2.3 / SP 800-186: c = T + 2S1 + 2S2
+ S3 + S4 - D1 - D2 - D3 - D4 on 32-bit words, done here per 16-bit half). Results are kept
below 2^256 but not always below p (lazy): every operation accepts any input below 2^256.
"""

import pathlib
import sys

OUT = pathlib.Path(__file__).resolve().parent.parent / "firmware" / "p256_engine.py"

P = 2**256 - 2**224 + 2**192 + 2**96 - 1
PL = [(P >> (16 * i)) & 0xFFFF for i in range(16)]

# workspace layout, in uint16 units
A13, B13, T13, T16, REG0 = 0, 20, 40, 80, 112
NREG = 48
OPS = ("END", "MUL", "SQR", "ADD", "SUB", "HALF", "MOV", "LDT", "STT", "ZCHK")
OP = {n: i for i, n in enumerate(OPS)}

# NIST reduction: output word w (0..7) = sum of coef * c_src over these terms
NIST = {w: [] for w in range(8)}
for w in range(8):
    NIST[w].append((1, w))                                        # T
for w, c in ((3, 11), (4, 12), (5, 13), (6, 14), (7, 15)):
    NIST[w].append((2, c))                                        # S1
for w, c in ((3, 12), (4, 13), (5, 14), (6, 15)):
    NIST[w].append((2, c))                                        # S2
for w, c in ((0, 8), (1, 9), (2, 10), (6, 14), (7, 15)):
    NIST[w].append((1, c))                                        # S3
for w, c in ((0, 9), (1, 10), (2, 11), (3, 13), (4, 14), (5, 15), (6, 13), (7, 8)):
    NIST[w].append((1, c))                                        # S4
for w, c in ((0, 11), (1, 12), (2, 13), (6, 8), (7, 10)):
    NIST[w].append((-1, c))                                       # D1
for w, c in ((0, 12), (1, 13), (2, 14), (3, 15), (6, 9), (7, 11)):
    NIST[w].append((-1, c))                                       # D2
for w, c in ((0, 13), (1, 14), (2, 15), (3, 8), (4, 9), (5, 10), (7, 12)):
    NIST[w].append((-1, c))                                       # D3
for w, c in ((0, 14), (1, 15), (3, 9), (4, 10), (5, 11), (7, 13)):
    NIST[w].append((-1, c))                                       # D4


# ---- the programs (register numbers as in firmware/tokens/p256.py) ----
X, Y, Z = 0, 1, 2
T1, T2, T3, T4, T5, T6 = 3, 4, 5, 6, 7, 8
X2, Y2, ONE, ZERO = 9, 10, 11, 12
J0 = 13     # a new key's Jacobian odd multiples: 8 x (X, Y, Z), registers 13..36
ACC0 = 37   # Montgomery's trick: running products, 37..44
QX, QY, ZC = 45, 46, 47
CNT = 8     # odd multiples in a table (window 5)
_END, _MUL, _SQR, _ADD, _SUB, _HALF, _MOV, _LDT, _STT, _ZCHK = range(10)


def _asm(ops, ret=True):
    """Program bytes from [(op, d, a, b)], ended by END (ret: run once)."""
    b = bytearray(4 * len(ops) + 4)
    assert all(0 <= v < 256 for o in ops for v in o)
    for i, o in enumerate(ops):
        for j, v in enumerate(o):
            b[4 * i + j] = v
    b[4 * len(ops) + 1] = 1 if ret else 0
    return bytes(b)


def _dbl_ops():
    # 2(X, Y, Z), a = -3: dbl-2001-b scaled by 1/2 (Z3 = Y*Z, alpha/2): 4M + 4S
    return [(_SQR, T1, Z, 0), (_SQR, T2, Y, 0), (_MUL, T3, X, T2),
            (_SUB, T4, X, T1), (_ADD, T5, X, T1), (_MUL, T6, T4, T5),
            (_ADD, T4, T6, T6), (_ADD, T6, T4, T6), (_HALF, T6, T6, 0),
            (_MUL, Z, Y, Z), (_SQR, T4, T6, 0), (_SUB, T4, T4, T3), (_SUB, X, T4, T3),
            (_SUB, T4, T3, X), (_MUL, T5, T6, T4), (_SQR, T2, T2, 0), (_SUB, Y, T5, T2)]


def _madd_ops(check):
    # (X, Y, Z) + (x2, y2) affine, madd-2007-bl's order: 8M + 3S. With check, stop at h = 0
    # (P1 = +-P2), leaving X, Y, Z as they were and r in T4.
    ops = [(_SQR, T1, Z, 0), (_MUL, T2, X2, T1), (_SUB, T2, T2, X), (_MUL, T3, Z, T1),
           (_MUL, T4, Y2, T3), (_SUB, T4, T4, Y)]
    if check:
        ops.append((_ZCHK, 0, T2, 0))
    return ops + [(_SQR, T5, T2, 0), (_MUL, T6, T2, T5), (_MUL, T3, X, T5), (_MUL, Z, Z, T2),
                  (_SQR, T1, T4, 0), (_SUB, T1, T1, T6), (_SUB, T1, T1, T3), (_SUB, X, T1, T3),
                  (_SUB, T3, T3, X), (_MUL, T3, T4, T3), (_MUL, T6, Y, T6), (_SUB, Y, T3, T6)]


def _load(neg, dx, dy):
    ops = [(_LDT, dx, 0, 0), (_LDT, dy, 0, 1)]
    return ops + [(_SUB, dy, ZERO, dy)] if neg else ops


def _sqn(r, k):
    return [(_SQR, r, r, 0)] * k


def _pow_ops(a, r, sqrt):
    """r = a^(p-2) (the inverse) or a^((p+1)/4) (a square root), by the usual chain of
    x_k = a^(2^k - 1): 255 squarings and 12 multiplications (253 and 9 for the root)."""
    x2, x3, x6, x12, x15, x30, x32 = T1, T2, T3, T4, T5, T6, ZC
    ops = [(_SQR, x2, a, 0), (_MUL, x2, x2, a),
           (_SQR, x3, x2, 0), (_MUL, x3, x3, a),
           (_MOV, x6, x3, 0)] + _sqn(x6, 3) + [(_MUL, x6, x6, x3),
           (_MOV, x12, x6, 0)] + _sqn(x12, 6) + [(_MUL, x12, x12, x6),
           (_MOV, x15, x12, 0)] + _sqn(x15, 3) + [(_MUL, x15, x15, x3),
           (_MOV, x30, x15, 0)] + _sqn(x30, 15) + [(_MUL, x30, x30, x15),
           (_MOV, x32, x30, 0)] + _sqn(x32, 2) + [(_MUL, x32, x32, x2), (_MOV, r, x32, 0)]
    if sqrt:   # (p+1)/4 = 2^254 - 2^222 + 2^190 + 2^94
        return ops + _sqn(r, 32) + [(_MUL, r, r, a)] + _sqn(r, 96) + [(_MUL, r, r, a)] + \
            _sqn(r, 94)
    # p - 2: 32 ones, 31 zeros and a one, 96 zeros, 94 ones, 0, 1
    return ops + _sqn(r, 32) + [(_MUL, r, r, a)] + _sqn(r, 128) + [(_MUL, r, r, x32)] + \
        _sqn(r, 32) + [(_MUL, r, r, x32)] + _sqn(r, 30) + [(_MUL, r, r, x30)] + \
        _sqn(r, 2) + [(_MUL, r, r, a)]


def _qtable_ops(cnt):
    """The odd multiples Q, 3Q, .. of (QX, QY) as affine rows x, y of the table t (n = 0):
    D = 2Q = (X, Y, zc) is affine on the isomorphic curve with coordinates scaled by zc
    (x -> x zc^2, y -> y zc^3; the addition formulas do not involve a or b), so each step
    is a mixed addition; then one inversion for all (Montgomery's trick). kQ != O for
    k < n, so no step meets a special case."""
    ops = [(_MOV, X, QX, 0), (_MOV, Y, QY, 0), (_MOV, Z, ONE, 0)] + _dbl_ops()
    ops += [(_MOV, X2, X, 0), (_MOV, Y2, Y, 0), (_MOV, ZC, Z, 0),
            (_SQR, T1, ZC, 0), (_MUL, J0, QX, T1), (_MUL, T2, T1, ZC), (_MUL, J0 + 1, QY, T2),
            (_MOV, J0 + 2, ONE, 0)]
    for i in range(1, cnt):
        j = J0 + 3 * (i - 1)
        ops += [(_MOV, X, j, 0), (_MOV, Y, j + 1, 0), (_MOV, Z, j + 2, 0)] + _madd_ops(False)
        ops += [(_MOV, j + 3, X, 0), (_MOV, j + 4, Y, 0), (_MOV, j + 5, Z, 0)]
    ops.append((_MOV, ACC0, ONE, 0))
    for i in range(1, cnt):
        ops.append((_MUL, ACC0 + i, ACC0 + i - 1, J0 + 3 * (i - 1) + 2))
    inv = Y2  # 1 / (zc Z_0 ... Z_7), then 1 / (zc Z_0 ... Z_i) going down
    ops += [(_MUL, X2, ACC0 + cnt - 1, J0 + 3 * (cnt - 1) + 2), (_MUL, X2, X2, ZC)]
    ops += _pow_ops(X2, inv, False)
    for i in range(cnt - 1, -1, -1):
        j = J0 + 3 * i
        ops += [(_MUL, X, inv, ACC0 + i), (_MUL, inv, inv, j + 2), (_SQR, Y, X, 0),
                (_MUL, Z, j, Y), (_STT, 0, Z, 2 * i), (_MUL, Y, Y, X), (_MUL, Z, j + 1, Y),
                (_STT, 0, Z, 2 * i + 1)]
    return ops



def programs():
    return {
        'DBL': _asm(_dbl_ops(), False),
        'ADDP': _asm(_load(False, X2, Y2) + _madd_ops(True)),
        'ADDN': _asm(_load(True, X2, Y2) + _madd_ops(True)),
        'SETP': _asm(_load(False, X, Y) + [(_MOV, Z, ONE, 0)]),
        'SETN': _asm(_load(True, X, Y) + [(_MOV, Z, ONE, 0)]),
        'RZERO': _asm([(_ZCHK, 0, T4, 0)]),
        'QTAB': _asm(_qtable_ops(CNT)),
        'INV': _asm(_pow_ops(QX, QY, False)),
        'SQRT': _asm(_pow_ops(QX, QY, True)),
    }


def _to13(src, dst):
    """Lines cutting the 16 uint16 limbs at pointer `src` into 20 13-bit limbs at s[dst]."""
    out = []
    for k in range(20):
        q, r = divmod(13 * k, 16)
        e = "%s[%d] >> %d" % (src, q, r) if r else "%s[%d]" % (src, q)
        if r > 3 and q + 1 < 16:
            e = "(%s) | (%s[%d] << %d)" % (e, src, q + 1, 16 - r)
        out.append("s[%d] = (%s) & 0x1FFF" % (dst + k, e))
    return out


def _columns(square):
    """Lines of the schoolbook columns into 13-bit digits at s[T13..T13+39]."""
    out = ["c = 0"]
    for k in range(39):
        lo, hi = max(0, k - 19), min(k, 19)
        if square:
            cross = ["s[%d] * s[%d]" % (A13 + i, A13 + k - i) for i in range(lo, hi + 1) if i < k - i]
            terms = []
            if cross:
                terms.append("((%s) << 1)" % " + ".join(cross))
            if k % 2 == 0:
                terms.append("s[%d] * s[%d]" % (A13 + k // 2, A13 + k // 2))
        else:
            terms = ["s[%d] * s[%d]" % (A13 + i, B13 + k - i) for i in range(lo, hi + 1)]
        out.append("v = %s + c" % " + ".join(terms))
        out.append("s[%d] = v & 0x1FFF" % (T13 + k))
        out.append("c = v >> 13")
    out.append("s[%d] = c" % (T13 + 39))
    return out


def _repack():
    """Lines packing the 40 13-bit digits into 32 16-bit digits at s[T16..]."""
    out = []
    for m in range(32):
        k, r = divmod(16 * m, 13)
        parts = ["s[%d] >> %d" % (T13 + k, r) if r else "s[%d]" % (T13 + k),
                 "s[%d] << %d" % (T13 + k + 1, 13 - r)]
        if 26 - r < 16:
            parts.append("s[%d] << %d" % (T13 + k + 2, 26 - r))
        out.append("s[%d] = (%s) & 0xFFFF" % (T16 + m, " | ".join(parts)))
    return out


def _carry(dst, sums):
    """Lines writing 16 signed digit sums (expressions) to dst[0..15] with carries;
    leaves the (signed) carry out of the top in c."""
    out = ["c = 0"]
    for i, e in enumerate(sums):
        out.append("v = %s + c" % e)
        out.append("%s[%d] = v & 0xFFFF" % (dst, i))
        out.append("c = v >> 16")
    return out


def _fold(dst):
    """Lines folding the carry c out of 2^256 back in (2^256 = 2^224 - 2^192 - 2^96 + 1
    mod p) and propagating again, twice (the second fold only ever adds +-1 and cannot
    carry out again: see the closing note of issue 12 / docs/tokens.md)."""
    out = []
    for _ in range(2):
        out.append("if c:")
        sums = []
        for i in range(16):
            e = "%s[%d]" % (dst, i)
            if i in (0, 14):
                e += " + f"
            elif i in (6, 12):
                e += " - f"
            sums.append(e)
        body = ["f = c"] + _carry(dst, sums)
        out += ["    " + b for b in body]
    return out


def _nist():
    sums = []
    for w in range(8):
        for h in range(2):
            parts = []
            for coef, c in NIST[w]:
                term = "s[%d]" % (T16 + 2 * c + h)
                if coef == 2:
                    parts.append(("+", "(%s << 1)" % term))
                else:
                    parts.append(("+" if coef > 0 else "-", term))
            e = parts[0][1] if parts[0][0] == "+" else "-" + parts[0][1]
            for sgn, t in parts[1:]:
                e += " %s %s" % (sgn, t)
            sums.append(e)
    return _carry("pd", sums) + _fold("pd")


def _ptr(name, field):
    return "%s = ptr16(uint(s) + ((%d + (int(prog[pc + %d]) << 4)) << 1))" % (name, REG0, field)


def handlers():
    """{op name: body lines} (pointers pd, pa, pb set up by the handler itself)."""
    h = {}
    h["MUL"] = ([_ptr("pa", 2), _ptr("pb", 3)] + _to13("pa", A13) + _to13("pb", B13)
                + _columns(False) + _repack() + [_ptr("pd", 1)] + _nist())
    h["SQR"] = ([_ptr("pa", 2)] + _to13("pa", A13) + _columns(True) + _repack()
                + [_ptr("pd", 1)] + _nist())
    h["ADD"] = ([_ptr("pd", 1), _ptr("pa", 2), _ptr("pb", 3)]
                + _carry("pd", ["pa[%d] + pb[%d]" % (i, i) for i in range(16)]) + _fold("pd"))
    h["SUB"] = ([_ptr("pd", 1), _ptr("pa", 2), _ptr("pb", 3)]
                + _carry("pd", ["pa[%d] - pb[%d]" % (i, i) for i in range(16)]) + _fold("pd"))
    # a/2: a + (a odd ? p : 0) is even and below 2^257; shift it right by one
    half = [_ptr("pd", 1), _ptr("pa", 2), "f = 0 - (pa[0] & 1)"]
    half += _carry("pd", ["pa[%d] + (%d & f)" % (i, PL[i]) if PL[i] else "pa[%d]" % i
                          for i in range(16)])
    for i in range(16):
        hi = "c" if i == 15 else "pd[%d]" % (i + 1)
        half.append("pd[%d] = ((pd[%d] >> 1) | (%s << 15)) & 0xFFFF" % (i, i, hi))
    h["HALF"] = half
    h["MOV"] = [_ptr("pd", 1), _ptr("pa", 2)] + ["pd[%d] = pa[%d]" % (i, i) for i in range(16)]
    # table rows: t + n + 16 * b (uint16 units)
    tp = "pa = ptr16(uint(t) + ((n + (int(prog[pc + 3]) << 4)) << 1))"
    h["LDT"] = [_ptr("pd", 1), tp] + ["pd[%d] = pa[%d]" % (i, i) for i in range(16)]
    h["STT"] = [_ptr("pd", 2), tp] + ["pa[%d] = pd[%d]" % (i, i) for i in range(16)]
    # register is 0 mod p: all zero, or equal to p
    z = [_ptr("pa", 2), "v = %s" % " | ".join("pa[%d]" % i for i in range(16)),
         "f = %s" % " | ".join("(pa[%d] ^ %d)" % (i, PL[i]) if PL[i] else "pa[%d]" % i
                               for i in range(16)),
         "if v == 0 or f == 0:", "    return pc + 4"]
    h["ZCHK"] = z
    return h


HEADER = '''# GENERATED by tools/gen_p256.py -- do not edit; change the generator and run it again.
#
# The P-256 field engine in viper (docs/tokens.md "The viper engine"): one function, run,
# executes a program of field operations on 256-bit registers in the workspace s.
#   s       uint16 workspace: scratch (112 limbs), then NREG registers of 16 limbs each
#   prog    program: 4 bytes an operation (op, d, a, b), op 0 ends it
#   n       repetitions of the program (point doublings), or a row offset into t (in uint16
#           units) for LDT/STT
#   t       uint16 table of affine points (rows of 16 limbs)
# returns 0 when the program ran n times (or once, for a table program), or the byte
# offset after a ZCHK that found a register = 0 mod p (the caller handles that case).
#
# 32-bit words (the ESP32's viper ints): every intermediate is below 2^31 in magnitude.
#   - to13: 16-bit limbs shifted and masked to 13 bits: below 2^29 before the mask.
#   - columns: at most 20 products of two 13-bit limbs (< 2^26 each) plus a carry below
#     2^18: below 20 * 2^26 + 2^18 < 2^30.4; squares: twice at most 10 cross products plus
#     one square and the carry: < 2^30.4 too. v >> 13 is on a non-negative int.
#   - repack: 13-bit digits shifted left by at most 13 (< 2^26) or 26 - r < 16 (< 2^29).
#   - NIST sums: at most 7 positive and 4 negative uint16 terms per digit (coefficients
#     1 or 2) plus a carry of magnitude < 2^4: magnitude < 2^20; & 0xFFFF and the
#     arithmetic >> 16 give the digit and the signed carry (two's complement).
#   - ADD/SUB/HALF: sums of two or three uint16 terms and a small carry: < 2^18.
# tools/viper32.py runs this function under 32-bit rules against Python integers in make test.
import micropython

NREG = %d
REG0 = %d
WORDS = REG0 + 16 * NREG  # uint16 limbs in a workspace
''' % (NREG, REG0)


def generate():
    h = handlers()
    lines = [HEADER, "", "@micropython.viper",
             "def run(s: ptr16, prog: ptr8, n: int, t: ptr16) -> int:",
             "    pc = 0",
             "    c = 0",
             "    v = 0",
             "    f = 0",
             "    pa = s", "    pb = s", "    pd = s",
             "    while True:",
             "        op = int(prog[pc])",
             "        if op == 0:  # END: d = 1 returns, else the program runs n times",
             "            if int(prog[pc + 1]) != 0:",
             "                return 0",
             "            n -= 1",
             "            if n <= 0:",
             "                return 0",
             "            pc = 0",
             "            continue"]
    first = True
    for name in OPS[1:]:
        kw = "if" if first else "elif"
        first = False
        lines.append("        %s op == %d:  # %s" % (kw, OP[name], name))
        lines += ["            " + b for b in h[name]]
    lines.append("        pc += 4")
    lines.append("")
    lines.append("")
    lines.append("# programs: 4 bytes an operation (op, d, a, b); see tools/gen_p256.py")
    for name, prog in programs().items():
        lines.append("%s = %r" % (name, prog))
    return "\n".join(lines) + "\n"


def main(argv):
    text = generate()
    if "--check" in argv:
        if OUT.read_text() != text:
            print("%s is not what tools/gen_p256.py makes: run it" % OUT)
            return 1
        return 0
    OUT.write_text(text)
    print("wrote %s (%d lines)" % (OUT, text.count("\n")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
