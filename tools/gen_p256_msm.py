"""The engine's multi-scalar loop and wNAF recoding, in viper (tools/gen_p256.py uses them).

In bytecode the loop over a verification's ~80 digit events and the recoding of its
scalars took ~45 us on the unix port (x170: ~8 ms on the ESP32); in viper they are a few
thousand instructions.

Digits: each scalar piece is a *stream* (0..3: G's four 64-bit pieces, rows in G's table
`prog`; 4..7: the key's pieces, rows in `t`); the digits sit one signed byte per stream and
position in the workspace, the 8 streams of a position side by side (DIGB + 8 pos + k), so
an empty position is two zero words. The first recoding of a verification clears them all.
The controller walks the positions from MTOP down to 0 and the streams 0..7 at each, owing
one doubling per position stepped down (once the sum is not the point at infinity), and
runs the point programs (copied into the workspace at PROGS) for each digit: doublings
first (one program, repeated), then SET (the first digit) or ADD. The program's END
returns to the controller (`ph` says what was running). ADD's quick zero check stops at a
possible h = 0: HZERO decides, then ADDREST finishes or RZERO tells P + P (double) from
P - P (the point at infinity).
Counters (for the cost model): programs started and positions scanned, in CNT.
"""

from tools import gen_p256 as gen
from tools import p256_programs as prg

NSTREAM = 8
GSTRIDE = 32 << (prg.W_G - 2)     # uint16 units per G table (rows of 32)
KSTRIDE = 32 * prg.CNT            # uint16 units per key table
MLEN = gen.REG0 + gen.STRIDE * gen.NREG          # (unused: kept for the layout)
MTOP = MLEN + NSTREAM                            # top position
CNT = MTOP + 1                                   # 10 counters
PROGS = (CNT + 11) & ~1                          # the digits start here (uint16 units, even)
ORDER = ("DBL", "ADDP", "ADDN", "SETP", "SETN", "HZERO", "RZERO", "ADDREST")


def blob():
    """(bytes of the programs, {name: byte offset from PROGS})."""
    progs = prg.programs()
    out, off = bytearray(), {}
    for name in ORDER:
        off[name] = len(out)
        out += progs[name]
    off["END"] = len(out)
    out += bytes(4)                 # an END the controller starts from
    return bytes(out), off


PROG_BYTES, OFF = blob()
DIGB = 2 * PROGS                                 # digit bytes (byte offset, word aligned)
LOW = 65                                         # positions 0..64: all 8 streams
DIG2 = DIGB + 8 * LOW                            # positions 65..256: stream 4 only
WORDS = (DIG2 + 192) // 2 + 2
PH_SCAN, PH_NEXT, PH_DBL, PH_DIGIT, PH_HZ, PH_RZ, PH_FINAL, PH_NEXT_DBL = range(8)
C_DBL, C_ADD, C_SET, C_HZ, C_RZ, C_REST, C_SCAN, C_SWITCH, C_REP = range(9)


def _count(k):
    return "s[%d] = s[%d] + 1" % (CNT + k, CNT + k)


def _start(name, ph, k):
    return ["ph = %d" % ph, "pc = %d" % OFF[name], _count(k), "continue"]


def repeat():
    """Lines at the top of the END branch in MSM mode: a doubling ended and more are owed
    (the cheap path: most program ends are these)."""
    return ["if ph == %d or ph == %d:  # a doubling ended" % (PH_DBL, PH_FINAL),
            "    pend -= 1",
            "    if pend > 0:",
            "        pc = %d" % OFF["DBL"],
            "        %s" % _count(C_REP),
            "        continue",
            "    if ph == %d:" % PH_FINAL,
            "        return 1 - inf",
            "    ph = %d" % PH_DIGIT]


def controller():
    """Lines of the END branch in MSM mode (indented for the interpreter's `if op == 0`)."""
    w0 = DIGB // 4
    return repeat() + [
        _count(C_SWITCH),
        "if ph == %d:  # HZERO ended: f = 1 if h = 0 mod p" % PH_HZ,
        "    if f == 0:"] + ["        " + x for x in _start("ADDREST", PH_NEXT, C_REST)] + [
        "    ph = %d" % PH_RZ,
        "    pc = %d" % OFF["RZERO"],
        "    %s" % _count(C_RZ),
        "    continue",
        "elif ph == %d:  # RZERO ended: r = 0 too (the same point: double it) or not" % PH_RZ,
        "    if f != 0:"] + ["        " + x for x in _start("DBL", PH_NEXT_DBL, C_DBL)] + [
        "    inf = 1",
        "    ph = %d" % PH_NEXT,
        "elif ph == %d:  # the doubling of P + P ended" % PH_NEXT_DBL,
        "    ph = %d" % PH_NEXT,
        "if ph == %d:" % PH_NEXT,
        "    st += 1",
        "    ph = %d" % PH_SCAN,
        "if ph == %d:  # the next digit: (pos, st) onwards" % PH_SCAN,
        "    d = 0",
        "    while True:",
        "        %s" % _count(C_SCAN),
        "        if st > 7:",
        "            if pos == 0:",
        "                break",
        "            pos -= 1",
        "            st = 0",
        "            if inf == 0:",
        "                pend += 1",
        "            if pos < %d and b32[%d + 2 * pos] == 0 and b32[%d + 2 * pos] == 0:" % (
            LOW, w0, w0 + 1),
        "                st = 8  # no digit at this position",
        "                continue",
        "        if pos >= %d:  # above 64: only stream 4 (a new key's scalar)" % LOW,
        "            if st <= 4:",
        "                d = int(b8[%d + pos])" % (DIG2 - LOW),
        "                st = 4",
        "                if d != 0:",
        "                    break",
        "            st = 8",
        "            continue",
        "        d = int(b8[%d + 8 * pos + st])" % DIGB,
        "        if d != 0:",
        "            break",
        "        st += 1",
        "    if d == 0:",
        "        if inf == 0 and pend > 0:"] + ["            " + x for x in
                                               _start("DBL", PH_FINAL, C_DBL)] + [
        "        return 1 - inf",
        "    if inf == 0 and pend > 0:"] + ["        " + x for x in
                                            _start("DBL", PH_DBL, C_DBL)] + [
        "    ph = %d" % PH_DIGIT,
        "# PH_DIGIT: the digit d at (pos, st): its row, then SET or ADD",
        "v = 0",
        "if d >= 128:",
        "    d = 256 - d",
        "    v = 1",
        "if st < 4:",
        "    tb = ptr16(uint(prog) + ((st * %d + ((d >> 1) << 5)) << 1))" % GSTRIDE,
        "else:",
        "    tb = ptr16(uint(t) + (((st - 4) * %d + ((d >> 1) << 5)) << 1))" % KSTRIDE,
        "ph = %d" % PH_NEXT,
        "if inf != 0:",
        "    inf = 0",
        "    %s" % _count(C_SET),
        "    pc = %d if v == 0 else %d" % (OFF["SETP"], OFF["SETN"]),
        "    continue",
        _count(C_ADD),
        "pc = %d if v == 0 else %d" % (OFF["ADDP"], OFF["ADDN"]),
        "continue"]


WNAF = '''
@micropython.viper
def wnaf(s: ptr16, c: int, k: ptr8, spec: int) -> int:
    # width-w NAF digits of `cnt` pieces of nbits bits of the little-endian scalar k (36
    # bytes: headroom above the top) into streams first.. (a signed byte at DIGB + 8
    # position + stream); spec = first | w << 3 | nbits << 7 | cnt << 16 | clear << 24:
    # clear first empties every stream at every position. Returns the steps it took.
    # 32 bits: v holds at most 24 bits of k plus a carry; digits are below 2^7.
    first = spec & 7
    w = (spec >> 3) & 15
    nbits = (spec >> 7) & 511
    cnt = (spec >> 16) & 255
    b8 = ptr8(s)
    if spec >> 24:
        b32 = ptr32(uint(s) + %(DIGB)d)
        i = 0
        while i < %(NWORDS)d:
            b32[i] = 0
            i += 1
    # position i of stream k: DIGB + 8 i + k below %(LOW)d, DIG2 + i - %(LOW)d above (k = 4)
    mask = (1 << w) - 1
    half = 1 << (w - 1)
    steps = 0
    j = 0
    while j < cnt:
        base = %(DIGB)d + first + j
        i = 0
        cc = 0
        while i <= nbits:
            steps += 1
            q = j * nbits + i
            o = q >> 3
            v = (int(k[o]) | (int(k[o + 1]) << 8) | (int(k[o + 2]) << 16)) >> (q & 7)
            lim = nbits - i
            if lim < 24:
                v = v & ((1 << lim) - 1)
            v = v + cc
            if v & 1:
                v = v & mask
                o = base + 8 * i
                if i >= %(LOW)d:
                    o = %(DIG2)d + i - %(LOW)d
                if v >= half:
                    b8[o] = 256 + v - (1 << w)
                    cc = 1
                else:
                    b8[o] = v
                    cc = 0
                i += w
            elif (v & 0xFF) == 0:
                i += 8
            else:
                while (v & 1) == 0:
                    v = v >> 1
                    i += 1
        j += 1
    return steps
'''


def wnaf_source():
    return WNAF % {"DIGB": DIGB, "NWORDS": (DIG2 + 192 - DIGB) // 4, "LOW": LOW, "DIG2": DIG2}
