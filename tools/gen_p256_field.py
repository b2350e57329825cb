"""The field operations' code, as lines of viper source (tools/gen_p256.py assembles them
into the engine's handlers): the workspace layout, the 13-bit product, the repacking, the
NIST reduction, the linear operations and the reduction to [0, p). The numbers and their
bounds are explained in tools/gen_p256.py's docstring and the engine's header."""

from tools import p256_programs as prg

P = 2**256 - 2**224 + 2**192 + 2**96 - 1
C256 = 2**256 % P                      # 2^224 - 2^192 - 2^96 + 1
R512 = 2**512 % P                      # below 2^227
FOLD = {0: 1, 6: -1, 12: -1, 14: 1}    # C256's 16-bit digits (signed)
LIMIT = 2**260                         # every register value is below this

# workspace layout, in uint16 units: s[0] = n (set by the caller), scratch, registers
A13, B13, T13, T16, CAN, REG0 = 2, 22, 42, 82, 115, 132
STRIDE = 18   # 17 digits and one of padding: every register starts on a 32-bit word
NREG = prg.NREG
WORDS = REG0 + STRIDE * NREG

# NIST reduction: output word w (0..7) = sum of coef * c_src (c: the 16 32-bit words)
NIST = {w: [(1, w)] for w in range(8)}                                   # T
for _w, _c, _k in ([(3, 11, 2), (4, 12, 2), (5, 13, 2), (6, 14, 2), (7, 15, 2)] +   # S1
                   [(3, 12, 2), (4, 13, 2), (5, 14, 2), (6, 15, 2)] +               # S2
                   [(0, 8, 1), (1, 9, 1), (2, 10, 1), (6, 14, 1), (7, 15, 1)] +     # S3
                   [(0, 9, 1), (1, 10, 1), (2, 11, 1), (3, 13, 1), (4, 14, 1),      # S4
                    (5, 15, 1), (6, 13, 1), (7, 8, 1)] +
                   [(0, 11, -1), (1, 12, -1), (2, 13, -1), (6, 8, -1), (7, 10, -1)] +  # D1
                   [(0, 12, -1), (1, 13, -1), (2, 14, -1), (3, 15, -1), (6, 9, -1),    # D2
                    (7, 11, -1)] +
                   [(0, 13, -1), (1, 14, -1), (2, 15, -1), (3, 8, -1), (4, 9, -1),     # D3
                    (5, 10, -1), (7, 12, -1)] +
                   [(0, 14, -1), (1, 15, -1), (3, 9, -1), (4, 10, -1), (5, 11, -1),    # D4
                    (7, 13, -1)]):
    NIST[_w].append((_k, _c))


def digits(v, n=16):
    """16-bit digits of v >= 0, the last one holding everything above (may be > 0xFFFF)."""
    return [(v >> (16 * i)) & 0xFFFF for i in range(n - 1)] + [v >> (16 * (n - 1))]


def margin(neg_low, top_min):
    """A multiple of p, as (16 low digits, top digit), whose low part is at least
    neg_low * (2^256 - 1) and whose top digit is at least top_min: added to a sum whose
    negative parts are at most that, it keeps every total non-negative."""
    k = 0
    while True:
        m = k * P
        top = top_min
        low = m - top * 2**256
        if low >= neg_low * (2**256 - 1):
            return digits(low), top
        k += 1


def _to13(src, dst):
    """Lines cutting the value at the ptr32 `src` (17 uint16 digits, below 2^260; read as
    32-bit words) into 20 13-bit limbs at s[dst]. A word's >> is arithmetic on the
    ESP32 (a ptr32 load is a signed int): the sign bits it brings in are masked off."""
    out = []
    for k in range(20):
        j, r = divmod(13 * k, 32)
        if r + 13 <= 32:
            e = "(%s[%d] >> %d) & 0x1FFF" % (src, j, r) if r else "%s[%d] & 0x1FFF" % (src, j)
        else:
            lo = 32 - r
            e = "((%s[%d] >> %d) & %d) | ((%s[%d] & %d) << %d)" % (
                src, j, r, (1 << lo) - 1, src, j + 1, (1 << (13 - lo)) - 1, lo)
        out.append("s[%d] = %s" % (dst + k, e))
    return out


def _columns(square):
    """Lines of the schoolbook columns into 13-bit digits at s[T13..T13+39]."""
    out = ["c = 0"]
    for k in range(39):
        lo, hi = max(0, k - 19), min(k, 19)
        if square:
            cross = ["s[%d] * s[%d]" % (A13 + i, A13 + k - i)
                     for i in range(lo, hi + 1) if i < k - i]
            terms = ["((%s) << 1)" % " + ".join(cross)] if cross else []
            if k % 2 == 0:
                terms.append("s[%d] * s[%d]" % (A13 + k // 2, A13 + k // 2))
        else:
            terms = ["s[%d] * s[%d]" % (A13 + i, B13 + k - i) for i in range(lo, hi + 1)]
        out += ["c = %s + c" % " + ".join(terms), "s[%d] = c & 0x1FFF" % (T13 + k),
                "c = c >> 13"]
    return out + ["s[%d] = c" % (T13 + 39)]


def _repack():
    """Lines packing the 40 13-bit digits into 33 16-bit digits at s[T16..T16+32], a
    32-bit word (two digits) at a time through the ptr32 qs (uint arithmetic; a part that
    would reach past bit 31 is masked first, so nothing wraps)."""
    out = []
    for m in range(17):
        k, r = divmod(32 * m, 13)
        parts = []
        sh = -r
        while sh < 32 and k <= 39:
            d = "s[%d]" % (T13 + k)
            if sh < 0:
                parts.append("(uint(%s) >> %d)" % (d, -sh))
            elif sh + 13 <= 32:
                parts.append("(uint(%s) << %d)" % (d, sh) if sh else "uint(%s)" % d)
            else:
                parts.append("(uint(%s & %d) << %d)" % (d, (1 << (32 - sh)) - 1, sh))
            k += 1
            sh += 13
        out.append("qs[%d] = %s" % ((T16 >> 1) + m, " | ".join(parts)))
    return out


def _carry(dst, sums, top=True):
    """Lines writing 16 signed digit sums (expressions) to dst[0..15] with carries, and
    the carry out (the value's top digit) to dst[16]."""
    out = ["c = 0"]
    for i, e in enumerate(sums):
        out += ["c = %s + c" % e, "%s[%d] = c & 0xFFFF" % (dst, i), "c = c >> 16"]
    return out + (["%s[16] = c" % dst] if top else [])


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


def _nist():
    m, _ = margin(4, 0)                  # NIST sums are above -4 * 2^256
    out = []
    sums = []
    for w in range(8):
        for h in range(2):
            i = 2 * w + h
            terms = [(k, "s[%d]" % (T16 + 2 * c + h)) for k, c in NIST[w]]
            terms += [(m[i], "")]
            if digits(R512)[i]:
                terms.append((digits(R512)[i], "s[%d]" % (T16 + 32)))
            sums.append(_sum(terms))
    return out + _carry("pd", sums)


def _lin(alpha, beta):
    """d = alpha * a + beta * b (alpha > 0, beta any sign; b absent when beta = 0), the
    inputs' top digits folded in through 2^256 = C256 (mod p) as f."""
    neg = max(0, -beta)
    m, m16 = margin(neg, neg * 15)
    f = _sum([(alpha, "pa[16]"), (beta, "pb[16]"), (m16, "")])
    lines = ["f = %s" % f]
    sums = []
    for i in range(16):
        terms = [(alpha, "pa[%d]" % i), (beta, "pb[%d]" % i), (m[i], "")]
        if i in FOLD:
            terms.append((FOLD[i], "f"))
        sums.append(_sum(terms))
    return lines + _carry("pd", sums)


def _ptr(name, field, kind="ptr16"):
    return "%s = %s(uint(s) + ((%d + int(ip[pc + %d]) * %d) << 1))" % (
        name, kind, REG0, field, STRIDE)


def _canon_lines(src):
    """Lines: the value at `src` (below 2^260) reduced to [0, p) into s[CAN..CAN+15].
    First fold: L + h*C256 with h <= 15 is below 2^256 + 15 * 2^224, so its top is 0 or 1;
    a second fold of that 1 lands below 2^256; then p is subtracted if the value is >= p
    (at most once: the value is below 2^256 < 2p)."""
    def fold_from(get):
        out = ["c = 0"]
        for i in range(16):
            t = [(1, get(i))] + ([(FOLD[i], "f")] if i in FOLD else [])
            out += ["c = %s + c" % _sum(t), "s[%d] = c & 0xFFFF" % (CAN + i), "c = c >> 16"]
        return out
    out = ["f = %s[16]" % src] + fold_from(lambda i: "%s[%d]" % (src, i))
    out += ["f = c", "if f:"] + ["    " + ln for ln in fold_from(lambda i: "s[%d]" % (CAN + i))]
    pl = digits(P)
    out.append("c = 0")
    for i in range(16):
        out += ["c = s[%d] - %d + c" % (CAN + i, pl[i]) if pl[i] else "c = s[%d] + c" % (CAN + i),
                "s[%d] = c & 0xFFFF" % (T16 + i), "c = c >> 16"]
    out.append("if c == 0:")
    out += ["    s[%d] = s[%d]" % (CAN + i, T16 + i) for i in range(16)]
    return out
