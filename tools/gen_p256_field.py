"""The field operations' code, as lines of viper source (tools/gen_p256.py assembles them
into the engine's handlers): the workspace layout, Montgomery's product in radix 2^13,
the linear operations, the loads and stores of table rows and the reduction to [0, p).
The numbers and their bounds are explained in tools/gen_p256.py's docstring and the
engine's header; `check_bounds` proves the linear operations' margins."""

from tools import p256_programs as prg

P = 2**256 - 2**224 + 2**192 + 2**96 - 1
C256 = 2**256 % P                      # 2^224 - 2^192 - 2^96 + 1
R = 2**260                             # Montgomery's radix: 20 limbs of 13 bits
BOUND = 12 * 2**256                    # every register value is below this
MASK = 0x1FFF
# p in limbs: p = -1 + 2^96 + 2^192 - 2^224 + 2^256 = -1 + (2^5 at limb 7) + (2^10 at
# limb 14) - (2^3 at limb 17) + (2^9 at limb 19): (limb, shift, sign) beside limb 0's -1
PTERMS = ((7, 5, 1), (14, 10, 1), (17, 3, -1), (19, 9, 1))
# C256 in limbs: 1 - (2^5 at limb 7) - (2^10 at limb 14) + (2^3 at limb 17)
FOLD = ((0, 0, 1), (7, 5, -1), (14, 10, -1), (17, 3, 1))

# workspace layout, in uint16 units: s[0] = n (set by the caller), s[1] = MSM mode, then
# scratch: the operands' copies, Montgomery's quotient digits, CANON's limbs, its digits
# (also the inverse's scratch, tools/gen_p256_inv.py), the staging rows (values in and out
# of the engine as 16 canonical uint16 digits: LDT/STT rows from 128), then the registers
A13, B13, M13, CL, T16, STG, REG0 = 2, 22, 42, 62, 82, 98, 162
CAN = T16
NSTG = 4
STRIDE = 20   # 20 limbs: every register starts on a 32-bit word (MUL copies words)
NREG = prg.NREG
WORDS = REG0 + STRIDE * NREG


def limbs(v):
    """The 20 13-bit limbs of 0 <= v < 2^260."""
    assert 0 <= v < 2**260
    return [(v >> (13 * i)) & MASK for i in range(20)]


def _sum(terms):
    """An expression from [(coef, text)] (coef an int; text may be '' for constants)."""
    e = ""
    for k, t in terms:
        if k == 0:
            continue
        mag = abs(k)
        if t == "":
            x = "%d" % mag
        elif mag == 1:
            x = t
        elif mag & (mag - 1) == 0:
            x = "(%s << %d)" % (t, mag.bit_length() - 1)
        else:
            x = "%s * %d" % (t, mag)
        e += (" - " if k < 0 else " + ") + x if e else ("-" if k < 0 else "") + x
    return e or "0"


def _copy_in(src, dst):
    """Lines copying the register at the ptr32 `src` (20 limbs: 10 words) to s[dst..]: the
    products then read fixed offsets of s, which lives in a register (mpy-cross keeps the
    first two locals in registers), instead of a spilled pointer."""
    return ["b32[%d] = %s[%d]" % (dst // 2 + i, src, i) for i in range(10)]


def _mont(square):
    """Lines of Montgomery's product a b / 2^260 (mod p) in one pass over the 40 columns:
    column k is the schoolbook column of s[A13..] x s[B13..] (or the square's) plus the
    quotient digits' multiples of p's limbs; for k < 20 its low 13 bits are the quotient
    digit m_k (p = -1 mod 2^13, so adding m_k p clears them: the carry is then c >> 13),
    for k >= 20 they are the result's limb k - 20, written to pd."""
    out = ["c = 0"]
    for k in range(40):
        lo, hi = max(0, k - 19), min(k, 19)
        terms = []
        if k <= 38:
            if square:
                cross = ["s[%d] * s[%d]" % (A13 + i, A13 + k - i)
                         for i in range(lo, hi + 1) if i < k - i]
                terms = ["((%s) << 1)" % " + ".join(cross)] if cross else []
                if k % 2 == 0:
                    terms.append("s[%d] * s[%d]" % (A13 + k // 2, A13 + k // 2))
            else:
                terms = ["s[%d] * s[%d]" % (A13 + i, B13 + k - i) for i in range(lo, hi + 1)]
        e = " + ".join(terms)
        for off, sh, sg in PTERMS:
            j = k - off
            if 0 <= j <= 19:
                t = "(s[%d] << %d)" % (M13 + j, sh)
                e = (e + (" + " if sg > 0 else " - ") + t) if e else ("" if sg > 0 else "-") + t
        out.append("c = %s + c" % e if e else "c = c")
        out.append(("s[%d] = c & 0x1FFF" % (M13 + k)) if k < 20 else
                   ("pd[%d] = c & 0x1FFF" % (k - 20)))
        out.append("c = c >> 13")
    return out


def lin_margin(alpha, beta):
    """(k, max total): the multiple k p that keeps d = alpha a + beta b + k p (with the
    inputs' tops folded through C256) non-negative for inputs below BOUND, and the
    largest total; check_bounds asserts it stays below BOUND."""
    top = BOUND // 2**256 - 1                     # an input's top h = limb 19 >> 9 <= 11
    fmin, fmax = top * min(beta, 0), top * (alpha + max(beta, 0))
    need = -min(beta, 0) * (2**256 - 1) - fmin * C256
    k = -(-need // P)
    hi = (alpha + max(beta, 0)) * (2**256 - 1) + fmax * C256 + k * P
    return k, hi


def _lin(alpha, beta):
    """d = alpha a + beta b + k p, the inputs' tops h (bits 256.., at most 11) folded in
    through 2^256 = C256 (mod p) as f: one carry pass into normalized limbs."""
    k, _ = lin_margin(alpha, beta)
    m = limbs(k * P)
    lines = ["f = %s" % _sum([(alpha, "(pa[19] >> 9)"), (beta, "(pb[19] >> 9)")])]
    out = ["c = 0"]
    fold = {i: sg << sh for i, sh, sg in FOLD}
    for i in range(20):
        if i == 19:
            t = [(alpha, "(pa[19] & 511)"), (beta, "(pb[19] & 511)")]
        else:
            t = [(alpha, "pa[%d]" % i), (beta, "pb[%d]" % i)]
        t += [(m[i], "")]
        if i in fold:
            t.append((fold[i], "f"))
        out += ["c = %s + c" % _sum(t), "pd[%d] = c & 0x1FFF" % i, "c = c >> 13"]
    return lines + out


def check_bounds():
    """The linear operations' totals stay in [0, BOUND); Montgomery's product maps inputs
    below BOUND to outputs below BOUND (a b / R + p); the columns fit 31 bits."""
    for a, b in prg.LIN.values():
        k, hi = lin_margin(a, b)
        assert hi < BOUND, (a, b, hi / 2**256)
    assert (BOUND - 1) ** 2 // R + P < BOUND
    col = 20 * MASK * MASK + MASK * ((1 << 5) + (1 << 10) + (1 << 9))
    assert col + (col >> 13) < 2**31


def _ptr(name, field, kind="ptr16"):
    return "%s = %s(uint(s) + ((%d + int(ip[pc + %d]) * %d) << 1))" % (
        name, kind, REG0, field, STRIDE)


def _from_row(dst, row):
    """Lines: the 16 canonical uint16 digits at the ptr16 `row` into 20 limbs at dst."""
    out = []
    for k in range(20):
        d, r = divmod(13 * k, 16)
        if r + 13 <= 16:
            e = "(%s[%d] >> %d) & 0x1FFF" % (row, d, r) if r else "%s[%d] & 0x1FFF" % (row, d)
        elif d == 15:       # the last limb: bits 247..255 (the value is below 2^256)
            e = "%s[15] >> %d" % (row, r)
        else:
            e = "((%s[%d] >> %d) | (%s[%d] << %d)) & 0x1FFF" % (row, d, r, row, d + 1, 16 - r)
        out.append("%s[%d] = %s" % (dst, k, e))
    return out


def _to_row(row):
    """Lines: the 20 limbs s[CL..] (a value below 2^256) as 16 uint16 digits into row."""
    out = []
    for m in range(16):
        parts = []
        for k in range(20):
            lo = 13 * k - 16 * m              # the limb's bit 0 sits at digit bit lo
            if lo >= 16 or lo + 13 <= 0:
                continue
            x = "s[%d]" % (CL + k)
            parts.append("(%s >> %d)" % (x, -lo) if lo < 0 else
                         ("(%s << %d)" % (x, lo) if lo else x))
        out.append("%s[%d] = (%s) & 0xFFFF" % (row, m, " | ".join(parts)))
    return out


def _canon_lines(src):
    """Lines: the value at `src` (limbs, below BOUND) reduced to [0, p) as limbs in
    s[CL..CL+19]. First fold: L + h C256 with h <= 11 is below 2^256 + 11 2^224, so its bit
    256 is 0 or 1; a second fold of that 1 lands below 2^256; then p is subtracted (into
    s[A13..]) and kept if nothing was borrowed (the value is below 2^256 < 2p)."""
    fold = {i: sg << sh for i, sh, sg in FOLD}

    def fold_from(get):
        out = ["c = 0"]
        for i in range(20):
            t = [(1, get(i))] + ([(fold[i], "f")] if i in fold else [])
            out += ["c = %s + c" % _sum(t), "s[%d] = c & 0x1FFF" % (CL + i), "c = c >> 13"]
        return out
    out = ["f = %s[19] >> 9" % src]
    out += fold_from(lambda i: "(%s[19] & 511)" % src if i == 19 else "%s[%d]" % (src, i))
    out += ["f = s[%d] >> 9" % (CL + 19), "if f:"]
    out += ["    " + ln for ln in fold_from(
        lambda i: "(s[%d] & 511)" % (CL + 19) if i == 19 else "s[%d]" % (CL + i))]
    pl = limbs(P)
    out.append("c = 0")
    for i in range(20):
        out += ["c = s[%d] - %d + c" % (CL + i, pl[i]) if pl[i] else "c = s[%d] + c" % (CL + i),
                "s[%d] = c & 0x1FFF" % (A13 + i), "c = c >> 13"]
    out.append("if c == 0:")
    out += ["    s[%d] = s[%d]" % (CL + i, A13 + i) for i in range(20)]
    return out
