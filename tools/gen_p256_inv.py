"""The engine's modular inverse: binary extended Euclid on 16 uint16 digits, in viper.

Used for s^-1 mod n (every verification) and for the one inversion mod p that makes a new
key's table affine. In bytecode the bignum extended Euclid took ~72 us on the unix port
(x115 by DESIGN §2: ~8 ms on the ESP32) and Fermat's a^(p-2) in the engine 255 squarings
(~6 ms); this loop does ~500 cheap steps on fixed buffers.

    u = a, v = m, x1 = 1, x2 = 0            invariant: x1 a = u, x2 a = v (mod m)
    loop: halve u while even (x1 /= 2 mod m), halve v while even (x2 /= 2 mod m);
          if u >= v: u -= v, x1 -= x2 (mod m), else v -= u, x2 -= x1 (mod m)
    until u = v (then both are gcd = 1): x2 = a^-1 mod m.
A halving removes up to 14 trailing zero bits at once. The step counts are kept in the
workspace (the cost model multiplies each block's instructions by them). Every value is
below m < 2^256: digit sums are below 2^31.
"""

from tools import gen_p256 as gen

IU, IV, IX1, IX2, ICNT = 2, 18, 34, 50, 66     # workspace (uint16 units; the MUL scratch)
MINV = 72                                      # -m^-1 mod 2^16 (the caller sets it)
MAXSHIFT = 14                                  # bits removed at once: q m[i] < 2^30
LIMIT = 2000                                   # outer steps: a non-invertible input stops
HALVINGS = 1000                                # u has 256 bits: more halvings mean u = 0


def halve(val, x):
    """Lines: s[val..] (even) loses its k trailing zero bits (1 <= k <= 14, k in `f`) and
    s[x..] becomes x / 2^k mod m: x + q m with q = x (-m^-1) mod 2^k is divisible by 2^k
    (Montgomery's trick) and (x + q m) / 2^k < m. 32 bits: q < 2^14, q m[i] < 2^30."""
    out = ["v = s[%d]" % val, "f = 0",
           "while (v & 1) == 0 and f < %d:" % MAXSHIFT, "    v = v >> 1", "    f += 1",
           "v = (1 << f) - 1",
           "v = ((s[%d] & v) * (s[%d] & v)) & v  # q" % (x, MINV), "c = 0"]
    for i in range(16):
        out += ["c = s[%d] + v * m[%d] + c" % (x + i, i), "s[%d] = c & 0xFFFF" % (x + i),
                "c = c >> 16"]
    for i in range(16):
        hi = "c" if i == 15 else "s[%d]" % (x + i + 1)
        out.append("s[%d] = ((s[%d] >> f) | (%s << (16 - f))) & 0xFFFF" % (x + i, x + i, hi))
    for i in range(16):
        hi = "0" if i == 15 else "s[%d]" % (val + i + 1)
        out.append("s[%d] = ((s[%d] >> f) | (%s << (16 - f))) & 0xFFFF" % (val + i, val + i, hi))
    return out


def compare():
    """Lines: d = u - v into s[T16..] with the borrow in c (0: u >= v) and v = OR of d."""
    out = ["c = 0", "v = 0"]
    for i in range(16):
        out += ["c = s[%d] - s[%d] + c" % (IU + i, IV + i), "s[%d] = c & 0xFFFF" % (gen.T16 + i),
                "v = v | s[%d]" % (gen.T16 + i), "c = c >> 16"]
    return out


def submod(dst, a, b):
    """Lines: s[dst..] = s[a..] - s[b..] mod m (inputs below m)."""
    out = ["c = 0"]
    for i in range(16):
        out += ["c = s[%d] - s[%d] + c" % (a + i, b + i), "s[%d] = c & 0xFFFF" % (dst + i),
                "c = c >> 16"]
    out.append("if c:")
    out.append("    c = 0")
    for i in range(16):
        out += ["    c = s[%d] + m[%d] + c" % (dst + i, i), "    s[%d] = c & 0xFFFF" % (dst + i),
                "    c = c >> 16"]
    return out


def blocks():
    """{name: lines} of the loop's blocks (the cost model counts each)."""
    return {
        "HU": halve(IU, IX1),
        "HV": halve(IV, IX2),
        "CMP": compare(),
        "SU": ["s[%d] = s[%d]" % (IU + i, gen.T16 + i) for i in range(16)] + submod(IX1, IX1, IX2),
        # v - u = -d: digits of 0 - d
        "SV": sum((["c = 0 - s[%d] + c" % (gen.T16 + i), "s[%d] = c & 0xFFFF" % (IV + i),
                    "c = c >> 16"] for i in range(16)), ["c = 0"]) + submod(IX2, IX2, IX1),
    }


PROLOGUE = ["@micropython.viper", "def %s(s: ptr16, c: int, m: ptr16) -> int:",
            "    v = 0", "    f = 0", "    k = 0"]


def counter(i, by="1"):
    return "s[%d] = s[%d] + %s" % (ICNT + i, ICNT + i, by)


def source(name="inv"):
    b = blocks()
    ind = lambda lines, n: ["    " * n + ln for ln in lines]  # noqa: E731
    lines = [PROLOGUE[0], PROLOGUE[1] % name] + PROLOGUE[2:] + [
        "    s[%d] = 0" % ICNT, "    s[%d] = 0" % (ICNT + 1), "    s[%d] = 0" % (ICNT + 2),
        "    s[%d] = 0" % (ICNT + 3), "    s[%d] = 0" % (ICNT + 4),
        "    while k < %d:" % LIMIT,
        "        k += 1",
        "        while (s[%d] & 1) == 0:" % IU] + ind(b["HU"] + [counter(0), counter(4, "f")], 3) + [
        "            if s[%d] > %d:" % (ICNT, HALVINGS),
        "                return 0  # u = 0: a was not invertible (0 mod m)",
        "        while (s[%d] & 1) == 0:" % IV] + ind(b["HV"] + [counter(1), counter(4, "f")], 3)
    lines += ind(b["CMP"], 2) + ["        if c == 0:",
                                 "            if v == 0:",
                                 "                return 1  # u = v = 1: x2 = a^-1"]
    lines += ind(b["SU"] + [counter(2)], 3) + ["        else:"] + ind(b["SV"] + [counter(3)], 3)
    return lines + ["    return 0"]
