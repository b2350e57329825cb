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

Numbers. A register holds a field element x in Montgomery form: a value below
BOUND = 12 * 2^256 congruent to x R mod p (R = 2^260; lazily reduced), as 20 normalized
13-bit limbs (uint16). Every operation maps such inputs to such an output in one carry
pass (`check_bounds` here and the 32-bit interpreter in tests check the bounds):
  - MUL/SQR: Montgomery's product a b / R (mod p), in one pass over the 40 columns of the
    schoolbook product of the limbs. A column sums at most 20 products below 2^26, under
    2^31, so it is one expression (16-bit limbs would need a second, high-half sum per
    product: ~20 instructions a product instead of ~10 in mpy-cross's code). Montgomery's
    reduction is nearly free in this radix: p = -1 mod 2^13, so the quotient digit of
    column k is its own low 13 bits (no multiplication), and p has only five non-zero
    limbs (-1, 2^5 at limb 7, 2^10 at 14, -2^3 at 17, 2^9 at 19): each quotient digit adds
    four shifted terms to later columns of the same pass. Columns 20..39 are the result:
    below (BOUND - 1)^2 / R + p < 10 * 2^256. This replaced re-cutting 16-bit digits into
    13-bit limbs and back and a NIST reduction: ~1,000 instructions less per product.
  - the linear operations (ADD, SUB, SUB2 = a - 2b, SUB8, LIN33 = 3a - 3b, LIN41 = 4a - b;
    tools/p256_programs.py LIN) fold the inputs' tops (bits 256.., at most 11) through
    2^256 = 2^224 - 2^192 - 2^96 + 1 (mod p) into the same pass, plus a multiple of p
    that keeps the total non-negative (and below BOUND: check_bounds).
  - values come in and go out as 16 canonical uint16 digits: table rows (LDT/STT; G's
    constant tables are stored in Montgomery form) and the workspace's staging rows (rows
    from W0), with a MUL by R^2 mod p (into Montgomery form) or by a plain 1 (out of it).
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
    P, C256, R, BOUND, FOLD, PTERMS, A13, B13, M13, CL, T16, CAN, STG, NSTG,
    REG0, STRIDE, NREG, WORDS, limbs, check_bounds, _copy_in, _mont, _sum, _lin, _ptr,
    _from_row, _to_row, _canon_lines)


def handlers():
    """{op name: body lines}. Locals: s (workspace), c (carry), prog, t, pc, n, v, f,
    pa, pb, pd."""
    h = {}
    h["MUL"] = ([_ptr("qa", 2, "ptr32"), _ptr("qb", 3, "ptr32")] + _copy_in("qa", A13) +
                _copy_in("qb", B13) + [_ptr("pd", 1)] + _mont(False))
    # SQR d, a, k: d = a^(2^k) (k = 0 or 1: once); a repeat squares d again, same op
    h["SQR"] = (["if rep == 0:", "    rep = int(ip[pc + 3])", "    " + _ptr("qa", 2, "ptr32"),
                 "else:", "    " + _ptr("qa", 1, "ptr32")] + _copy_in("qa", A13) +
                [_ptr("pd", 1)] + _mont(True) +
                ["rep -= 1", "if rep > 0:", "    continue", "rep = 0"])
    for name, (a, b) in prg.LIN.items():
        h[name] = [_ptr("pd", 1), _ptr("pa", 2), _ptr("pb", 3)] + _lin(a, b)
    h["MOV"] = ([_ptr("qb", 1, "ptr32"), _ptr("qa", 2, "ptr32")] +
                ["qb[%d] = qa[%d]" % (i, i) for i in range(10)])
    # table rows: 16 digits (canonical) at tb + 16 * b (uint16 units); tb = t + n, or the
    # digit's row in MSM mode; b >= 128: the workspace's staging row b - 128 instead
    # (values in and out of the engine; one handler for both keeps the code small)
    tp = ["v = int(ip[pc + 3])", "if v < 128:", "    pb = ptr16(uint(tb) + (v << 5))", "else:",
          "    pb = ptr16(uint(s) + ((%d + ((v - 128) << 4)) << 1))" % STG]
    h["LDT"] = [_ptr("pd", 1)] + tp + _from_row("pd", "pb")
    # STT d = 1 is the full zero test (p256_programs.zfull): the same reduction to [0, p),
    # then "is it 0?" instead of the store. In MSM mode the controller decides (HZERO, then
    # ADDREST or RZERO): f says "zero"; outside it a zero stops the program.
    h["STT"] = ([_ptr("pa", 2)] + _canon_lines("pa") +
                ["if int(ip[pc + 1]) != 0:",
                 "    v = %s" % " | ".join("s[%d]" % (CL + i) for i in range(20)),
                 "    f = 0", "    if v == 0:", "        if mode == 0:",
                 "            return pc + 4", "        f = 1", "else:"] +
                ["    " + x for x in tp + _to_row("pb")])
    # might be 0 mod p: a value below BOUND that is k p (k <= 11) has the low limb
    # (2^13 - k) mod 2^13, since p = -1 mod 2^13. The full check is STT d = 1 (zfull).
    from tools import gen_p256_msm as msm
    h["ZCHK"] = [_ptr("pa", 2), "v = pa[0]", "if v == 0 or v >= 0x1FF0:",
                 "    if mode == 0:", "        return pc + 4",
                 "    ph = %d" % msm.PH_HZ, "    pc = %d" % msm.OFF["HZERO"],
                 "    %s" % msm._count(msm.C_HZ), "    continue"]
    return h


PROLOGUE = ["@micropython.viper",
            "def %s(s: ptr16, c: int, prog: ptr8, t: ptr16) -> int:",
            "    pc = 0", "    n = s[0]", "    v = 0", "    f = 0",
            "    pa = s", "    pb = s", "    pd = s", "    ip = prog",
            "    tb = ptr16(uint(t) + (n << 1))", "    mode = s[1]", "    pos = 0", "    st = 0",
            "    pend = 0", "    inf = 1", "    ph = 0", "    d = 0", "    b8 = ptr8(s)",
            "    b32 = ptr32(s)", "    qa = b32", "    qb = b32", "    rep = 0"]

HEADER = '''# GENERATED by tools/gen_p256.py -- do not edit; change the generator and run it again.
#
# The P-256 field engine in viper (docs/tokens.md "The viper engine"): one function, run,
# executes a program of field operations on registers in the workspace s.
#   s       uint16 workspace: s[0] = n (the caller sets it), scratch, staging rows, then
#           NREG registers of 20 13-bit limbs (a value below 12 * 2^256, congruent mod p
#           to x 2^260 for the element x: Montgomery form)
#   c       0 (the carry: an argument so that it lives in a register)
#   prog    program: 4 bytes an operation (op, d, a, b), op 0 ends it
#   n       repetitions of the program (point doublings), or a row offset into t (uint16
#           units) for LDT/STT programs, which run once
#   t       uint16 table of affine points (rows of 16 digits, canonical, Montgomery form);
#           LDT/STT rows from 128 on are the workspace's staging rows instead
# returns 0 when the program ran, or the byte offset after a ZCHK that found a register
# = 0 mod p (the caller handles that case).
#
# 32-bit words (the ESP32's viper ints): every intermediate is below 2^31 in magnitude,
# and tools/viper32.py runs this function under 32-bit rules against Python integers:
#   - registers: 20 limbs below 2^13 (a value below 12 * 2^256, Montgomery form x 2^260).
#   - MUL/SQR columns: at most 20 products of two 13-bit limbs (< 2^26 each), a square's
#     twice at most 10 cross products plus one square, plus the quotient digits' terms
#     (m << 5, m << 10, m << 9, -(m << 3), m < 2^13: < 2^23.6 together) and the carry
#     (< 2^17.4 in magnitude): < 20 * 2^26 + 2^23.6 + 2^17.4 < 2^30.4. c & 0x1FFF and the
#     arithmetic c >> 13 give the digit and the signed carry (two's complement).
#   - linear operations and CANON: limb sums with coefficients up to 8 (< 2^16.2), a
#     margin limb below 2^13 and the folded top f (|f| <= 88) shifted by at most 10
#     (< 2^16.5): magnitude < 2^18.
#   - LDT/STT: uint16 digits shifted by at most 15 bits (< 2^31) before the mask.
import micropython

REG0 = %d     # first register, in uint16 units
STRIDE = %d   # uint16 limbs a register
NREG = %d
WORDS = %d    # uint16 units in a workspace
STG = %d      # staging rows (16 uint16 digits each), in uint16 units
''' % (REG0, STRIDE, NREG, WORDS, STG)


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
    lines += ["", "", "# n bytes of src from soff, in reverse order, to dst from doff: big-endian values",
              "# (signatures, keys, digests) into the engine's little-endian rows without a",
              "# bignum. 32 bits: offsets inside one buffer (< 2^16), values bytes.",
              "@micropython.viper",
              "def rev(dst: ptr8, doff: int, src: ptr8, soff: int, n: int):",
              "    i = 0",
              "    while i < n:",
              "        dst[doff + i] = src[soff + n - 1 - i]",
              "        i += 1"]
    lines += ["", "", "# programs: 4 bytes an operation (op, d, a, b); tools/p256_programs.py"]
    for name, prog in prg.programs().items():
        if name not in msm.ORDER:
            lines.append("%s = %r" % (name, prog))
    check_bounds()
    lines += ["", "# opcodes and registers for programs made at run time (tokens/p256.py _set, _get)",
              "MUL, MOV, LDT, STT = %d, %d, %d, %d" % (prg.MUL, prg.MOV, prg.LDT, prg.STT),
              "R2, P1, TG, W0, BB = %d, %d, %d, %d, %d" % (prg.R2, prg.P1, prg.TG, prg.W0,
                                                              prg.BB),
              "DEC_OK = %d  # what DECOMP returns when x is on the curve" % prg.DEC_OK,
              "FIN_INF, FIN_EQ = %d, %d  # what FIN returns: infinity, x(R) = r" % (
                  prg.FIN_INF, prg.FIN_EQ)]
    consts = b"".join(bytes(sum(([v & 0xFF, v >> 8] for v in limbs(x)), []))
                      for x in (R % P, R * R % P, 1, prg.B * R % P))
    lines += ["# the constant registers ONE (R mod p: Montgomery's 1), R2 (R^2 mod p), P1 (1),",
              "# BB (the curve's b, b R mod p): 20 uint16 limbs each (tokens/p256.py copies",
              "# them into the workspace)",
              "CONSTS = %r" % consts]
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
