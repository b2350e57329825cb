"""Generate firmware/p256_engine.py: the viper P-256 field engine.

    python tools/gen_p256.py            # rewrite the engine
    python tools/gen_p256.py --check    # exit 1 if the committed engine is not what this makes

The engine is one viper function, `run`, that executes a program of field operations
(tools/p256_programs.py) on registers held in one preallocated workspace. Why an
interpreter: a call from viper to viper goes through the runtime (~58 ns here, ~10 us on
the ESP32 by the x170 model) and a verification does ~3,000 field operations, so each must
not be a call; inlining them into the point formulas would take ~150 KB of machine code.
One interpreter holds each operation's code once and a whole point doubling or addition,
or a block of doublings, is one call.

Numbers. A register holds a value below 2^260 (lazily reduced: any value congruent mod p
will do) as 17 uint16 digits, the last one 0..15. Every operation maps such inputs to such
an output in one carry pass, with no second "fold" pass (the bounds are checked by
`check_bounds` here and by the 32-bit interpreter in tests):
  - MUL/SQR re-cut the operands into 20 limbs of 13 bits (exactly 260 bits): a column of
    the schoolbook product sums at most 20 products below 2^26, under 2^31, so a column is
    one expression and one carry (16-bit limbs would need a second, high-half sum per
    product: ~20 instructions a product instead of ~9 in mpy-cross's code). The 40 digits
    are packed into 33 16-bit digits and reduced with P-256's special form (NIST FIPS
    186-4 D.2.3: T + 2S1 + 2S2 + S3 + S4 - D1 - D2 - D3 - D4 on 32-bit words, here per
    16-bit half), the digits above 2^512 times 2^512 mod p (which is below 2^227), plus 5p
    so that no sum is negative: the result is in [0, 12 * 2^256).
  - the linear operations (ADD, SUB, SUB2 = a - 2b, SUB8, LIN33 = 3a - 3b, LIN41 = 4a - b;
    tools/p256_programs.py LIN) fold the inputs' top digits h through
    2^256 = 2^224 - 2^192 - 2^96 + 1 (mod p) into the same pass, plus a multiple of p
    whose digits keep the total non-negative.
The carry `c` is the function's second argument so that mpy-cross keeps it in a register
(viper keeps the first two locals in registers on xtensawin): a carry step is then ~14
instructions instead of ~23.
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from tools import p256_programs as prg  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parent.parent / "firmware" / "p256_engine.py"

from tools.gen_p256_field import (  # noqa: E402,F401  (re-exported: the model and tests use them)
    P, C256, R512, FOLD, LIMIT, A13, B13, T13, T16, CAN,
    REG0, STRIDE, NREG, WORDS, NIST, digits, margin, _to13, _columns, _repack,
    _carry, _sum, _nist, _lin, _ptr, _canon_lines)


def handlers():
    """{op name: body lines}. Locals: s (workspace), c (carry), prog, t, pc, n, v, f,
    pa, pb, pd."""
    h = {}
    h["MUL"] = ([_ptr("qa", 2, "ptr32"), _ptr("qb", 3, "ptr32")] + _to13("qa", A13) +
                _to13("qb", B13) + _columns(False) + _repack() + [_ptr("pd", 1)] + _nist())
    # SQR d, a, k: d = a^(2^k) (k = 0 or 1: once); a repeat squares d again, same op
    h["SQR"] = (["if rep == 0:", "    rep = int(ip[pc + 3])", "    " + _ptr("qa", 2, "ptr32"),
                 "else:", "    " + _ptr("qa", 1, "ptr32")] + _to13("qa", A13) + _columns(True) +
                _repack() + [_ptr("pd", 1)] + _nist() +
                ["rep -= 1", "if rep > 0:", "    continue", "rep = 0"])
    for name, (a, b) in prg.LIN.items():
        h[name] = [_ptr("pd", 1), _ptr("pa", 2), _ptr("pb", 3)] + _lin(a, b)
    h["MOV"] = [_ptr("pd", 1), _ptr("pa", 2)] + ["pd[%d] = pa[%d]" % (i, i) for i in range(17)]
    # table rows: 16 digits (canonical) at tb + 16 * b (uint16 units); tb = t + n, or the
    # digit's row in MSM mode
    tp = "pb = ptr16(uint(tb) + (int(ip[pc + 3]) << 5))"
    h["LDT"] = ([_ptr("pd", 1), tp] + ["pd[%d] = pb[%d]" % (i, i) for i in range(16)] +
                ["pd[16] = 0"])
    h["STT"] = ([_ptr("pa", 2)] + _canon_lines("pa") + [tp] +
                ["pb[%d] = s[%d]" % (i, CAN + i) for i in range(16)])
    # might be 0 mod p: a value below 2^260 that is k p (k <= 16) has the low digit
    # (2^16 - k) mod 2^16, since p = -1 mod 2^16. The full check is ZFULL.
    # In MSM mode the controller decides (HZERO, then ADDREST or RZERO): f says "zero".
    from tools import gen_p256_msm as msm
    h["ZCHK"] = [_ptr("pa", 2), "v = pa[0]", "if v == 0 or v >= 0xFFF0:",
                 "    if mode == 0:", "        return pc + 4",
                 "    ph = %d" % msm.PH_HZ, "    pc = %d" % msm.OFF["HZERO"],
                 "    %s" % msm._count(msm.C_HZ), "    continue"]
    h["ZFULL"] = ([_ptr("pa", 2)] + _canon_lines("pa") +
                  ["v = %s" % " | ".join("s[%d]" % (CAN + i) for i in range(16)),
                   "f = 0", "if v == 0:", "    if mode == 0:", "        return pc + 4",
                   "    f = 1"])
    return h


PROLOGUE = ["@micropython.viper",
            "def %s(s: ptr16, c: int, prog: ptr8, t: ptr16) -> int:",
            "    pc = 0", "    n = s[0]", "    v = 0", "    f = 0",
            "    pa = s", "    pb = s", "    pd = s", "    ip = prog",
            "    tb = ptr16(uint(t) + (n << 1))", "    mode = s[1]", "    pos = 0", "    st = 0",
            "    pend = 0", "    inf = 1", "    ph = 0", "    d = 0", "    b8 = ptr8(s)",
            "    b32 = ptr32(s)", "    qa = b32", "    qb = b32", "    qs = b32", "    rep = 0"]

HEADER = '''# GENERATED by tools/gen_p256.py -- do not edit; change the generator and run it again.
#
# The P-256 field engine in viper (docs/tokens.md "The viper engine"): one function, run,
# executes a program of field operations on registers in the workspace s.
#   s       uint16 workspace: s[0] = n (the caller sets it), scratch, then NREG registers
#           of 17 digits (a value below 2^260, congruent mod p to the element)
#   c       0 (the carry: an argument so that it lives in a register)
#   prog    program: 4 bytes an operation (op, d, a, b), op 0 ends it
#   n       repetitions of the program (point doublings), or a row offset into t (uint16
#           units) for LDT/STT programs, which run once
#   t       uint16 table of affine points (rows of 16 digits, canonical)
# returns 0 when the program ran, or the byte offset after a ZCHK that found a register
# = 0 mod p (the caller handles that case).
#
# 32-bit words (the ESP32's viper ints): every intermediate is below 2^31 in magnitude,
# and tools/viper32.py runs this function under 32-bit rules against Python integers:
#   - to13: uint16 digits shifted left by at most 12 and masked to 13 bits: < 2^28.
#   - columns: at most 20 products of two 13-bit limbs (< 2^26 each) plus a carry below
#     2^18: < 20 * 2^26 + 2^18 < 2^30.4; a square's column is twice at most 10 cross
#     products plus one square and the carry: < 2^30.4 too. c >> 13 on a value >= 0.
#   - repack: 13-bit digits shifted left by at most 13 (< 2^26), or by 26 - r < 16.
#   - digit sums (NIST, the linear operations, CANON): at most 11 uint16 terms with
#     coefficients up to 8, a margin digit below 2^20, 0xFFFF * (digit above 2^512,
#     < 2^8) and the folded top (< 2^7): magnitude < 2^25; & 0xFFFF and the arithmetic
#     >> 16 give the digit and the signed carry (two's complement).
import micropython

REG0 = %d     # first register, in uint16 units
STRIDE = %d   # uint16 digits a register
NREG = %d
WORDS = %d    # uint16 units in a workspace
''' % (REG0, STRIDE, NREG, WORDS)


def interpreter(name, bodies, msm_mode=True):
    """Source lines of the interpreter with the given {opcode: body lines}; msm_mode adds
    the multi-scalar controller (tools/gen_p256_msm.py)."""
    from tools import gen_p256_msm as msm
    lines = [PROLOGUE[0], PROLOGUE[1] % name] + PROLOGUE[2:]
    if msm_mode:
        lines += ["    if mode != 0:  # MSM: programs after G's table (prog), digits from the top",
                  "        ip = ptr8(uint(prog) + %d)" % len(prg.gtable()),
                  "        pos = s[%d]" % msm.MTOP,
                  "        ph = %d" % msm.PH_SCAN,
                  "        pc = %d" % msm.OFF["END"]]
    lines += [
        "    while True:",
        "        op = int(ip[pc])",
        "        if op == 0:  # END: d = 1 returns, else the program runs n times"]
    if msm_mode:
        lines += ["            if mode != 0:"] + ["                " + x for x in msm.controller()]
    lines += [
        "            if int(ip[pc + 1]) != 0:",
        "                return 0",
        "            n -= 1",
        "            if n <= 0:",
        "                return 0",
        "            pc = 0",
        "            continue"]
    first = True
    for k, body in bodies:
        lines.append("        %s op == %d:  # %s" % ("if" if first else "elif", k, prg.OPS[k]))
        first = False
        lines += ["            " + b for b in body]
    return lines + ["        pc += 4"]


def generate():
    from tools import gen_p256_msm as msm
    h = handlers()
    head = HEADER.replace("WORDS = %d " % WORDS, "WORDS = %d " % msm.WORDS)
    head += ("MLEN, MTOP, CNT = %d, %d, %d   # MSM: stream lengths, top position, counters\n"
             "PROGS, DIGB = %d, %d   # programs (uint16 units), digits (bytes)\n"
             % (msm.MLEN, msm.MTOP, msm.CNT, msm.PROGS, msm.DIGB))
    lines = [head, ""] + interpreter("run", [(prg.OPS.index(n), h[n]) for n in prg.OPS[1:]])
    lines += ["", ""] + msm.wnaf_source().strip("\n").splitlines()
    from tools import gen_p256_inv as ginv
    lines += ["", "", "# a^-1 mod m by binary extended Euclid (tools/gen_p256_inv.py): a in s[%d..%d],"
              % (ginv.IU, ginv.IU + 15), "# m's 16 digits in m, s[%d..%d] = m; returns 1 and "
              "a^-1 in s[%d..%d], or 0 (a = 0 mod m)" % (ginv.IV, ginv.IV + 15, ginv.IX2, ginv.IX2 + 15)]
    lines += ginv.source()
    lines += ["", "", "# programs: 4 bytes an operation (op, d, a, b); tools/p256_programs.py"]
    for name, prog in prg.programs().items():
        if name not in msm.ORDER:
            lines.append("%s = %r" % (name, prog))
    g = prg.gtable()
    lines += ["GLEN = %d  # G's tables, then the MSM's programs, in GTAB" % len(g)]
    lines += ["OFF = %r  # each program's offset after GLEN" % dict(msm.OFF)]
    lines += ["", "# G's tables (window %d, %d pieces): rows of x, y, 32 little-endian bytes each"
              % (prg.W_G, prg.SPLIT), "GTAB = ("]
    for i in range(0, len(g), 48):
        lines.append("    %r" % g[i:i + 48])
    for i in range(0, len(msm.PROG_BYTES), 48):
        lines.append("    %r" % msm.PROG_BYTES[i:i + 48])
    lines.append(")")
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
