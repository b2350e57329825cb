"""Decode Xtensa machine code (as mpy-cross -march=xtensawin emits it) into instructions
with their length and class, to count them.

Xtensa instructions are 24 bits, or 16 bits for the code-density ("narrow", .N) forms;
op0, the low 4 bits of the first byte, tells them apart: op0 8..13 are narrow (L32I.N,
S32I.N, ADD.N, ADDI.N, ST2, ST3), 14 and 15 are not used by this core (no FLIX), every
other op0 starts a 24-bit instruction (Xtensa ISA Reference Manual, "Instruction Formats"
and the opcode maps of chapter 7). Only what a count needs is decoded: length, class
(load, store, mul, branch, other), and the targets of jumps and branches (to find loops).
"""

LOAD, STORE, MUL, BRANCH, OTHER = "load", "store", "mul", "branch", "other"
CLASSES = (LOAD, STORE, MUL, BRANCH, OTHER)


class DecodeError(Exception):
    """Bytes that are not an instruction this decoder knows."""


class Insn:
    __slots__ = ("pc", "size", "cls", "name", "target", "cond")

    def __init__(self, pc, size, cls, name, target=None, cond=False):
        self.pc, self.size, self.cls, self.name = pc, size, cls, name
        self.target, self.cond = target, cond

    def __repr__(self):
        t = "" if self.target is None else " -> %d" % self.target
        return "<%d %s%s>" % (self.pc, self.name, t)


def _sext(v, bits):
    return v - (1 << bits) if v & (1 << (bits - 1)) else v


def _narrow(pc, w):
    op0, t, r = w & 15, (w >> 4) & 15, (w >> 12) & 15
    if op0 == 8:
        return Insn(pc, 2, LOAD, "l32i.n")
    if op0 == 9:
        return Insn(pc, 2, STORE, "s32i.n")
    if op0 == 10:
        return Insn(pc, 2, OTHER, "add.n")
    if op0 == 11:
        return Insn(pc, 2, OTHER, "addi.n")
    if op0 == 12:
        if t & 8 == 0:
            return Insn(pc, 2, OTHER, "movi.n")
        imm = ((t & 3) << 4) | r       # imm6, unsigned: target = pc + 4 + imm6
        return Insn(pc, 2, BRANCH, "bnez.n" if t & 4 else "beqz.n", pc + 4 + imm, True)
    # op0 == 13 (ST3)
    if r == 0:
        return Insn(pc, 2, OTHER, "mov.n")
    if r == 15:
        names = {0: "ret.n", 1: "retw.n", 2: "break.n", 3: "nop.n", 6: "ill.n"}
        n = names.get(t)
        if n is None:
            raise DecodeError("unknown ST3 at %d" % pc)
        return Insn(pc, 2, BRANCH if n.startswith("ret") else OTHER, n)
    raise DecodeError("unknown narrow op at %d" % pc)


_RST2 = {8: "mull", 10: "muluh", 11: "mulsh", 12: "quou", 13: "quos", 14: "remu", 15: "rems"}
_LSAI = {0: ("l8ui", LOAD), 1: ("l16ui", LOAD), 2: ("l32i", LOAD), 4: ("s8i", STORE),
         5: ("s16i", STORE), 6: ("s32i", STORE), 9: ("l16si", LOAD), 10: ("movi", OTHER),
         12: ("addi", OTHER), 13: ("addmi", OTHER), 11: ("l32ai", LOAD), 15: ("s32ri", STORE),
         7: ("cache", OTHER), 14: ("s32c1i", STORE)}


def _wide(pc, w):
    op0 = w & 15
    r = (w >> 12) & 15
    op1, op2 = (w >> 16) & 15, (w >> 20) & 15
    if op0 == 0:      # QRST
        if op1 == 0 and op2 == 0:          # ST0: ret/retw/callx/jx/nop/...
            m, n = (w >> 6) & 3, (w >> 4) & 3
            if r == 0 and m == 2:
                return Insn(pc, 3, BRANCH, ("ret", "retw", "jx", "?")[n])
            if r == 0 and m == 3:
                return Insn(pc, 3, BRANCH, "callx%d" % (4 * n))
            return Insn(pc, 3, OTHER, "st0")
        if op1 == 2 and op2 in _RST2:
            n = _RST2[op2]
            return Insn(pc, 3, MUL if n.startswith("mul") else OTHER, n)
        if op1 == 1 and op2 in (12, 13):
            return Insn(pc, 3, MUL, "mul16u" if op2 == 12 else "mul16s")
        return Insn(pc, 3, OTHER, "alu")
    if op0 == 1:
        return Insn(pc, 3, LOAD, "l32r")
    if op0 == 2:
        n, c = _LSAI.get(r, (None, None))
        if n is None:
            raise DecodeError("unknown LSAI r=%d at %d" % (r, pc))
        return Insn(pc, 3, c, n)
    if op0 == 5:      # CALLN: target = (pc & ~3) + (offset << 2) + 4
        off = _sext(w >> 6, 18)
        return Insn(pc, 3, BRANCH, "call%d" % (4 * ((w >> 4) & 3)), (pc & ~3) + (off << 2) + 4)
    if op0 == 6:      # SI
        n, m = (w >> 4) & 3, (w >> 6) & 3
        if n == 0:
            return Insn(pc, 3, BRANCH, "j", pc + 4 + _sext(w >> 6, 18))
        if n == 1:    # BZ: beqz/bnez/bltz/bgez, imm12
            return Insn(pc, 3, BRANCH, ("beqz", "bnez", "bltz", "bgez")[m],
                        pc + 4 + _sext(w >> 12, 12), True)
        if n == 2:    # BI0: beqi/bnei/blti/bgei, imm8
            return Insn(pc, 3, BRANCH, ("beqi", "bnei", "blti", "bgei")[m],
                        pc + 4 + _sext(w >> 16, 8), True)
        if m == 0:    # BI1 with m = 0: entry
            return Insn(pc, 3, OTHER, "entry")
        if m == 1:    # loop, loopnez, loopgtz, bf/bt: not emitted by mpy-cross
            raise DecodeError("unexpected B1 op at %d" % pc)
        return Insn(pc, 3, BRANCH, ("bltui", "bgeui")[m - 2], pc + 4 + _sext(w >> 16, 8), True)
    if op0 == 7:      # B: two-register compares and bit tests, imm8
        return Insn(pc, 3, BRANCH, "b%d" % r, pc + 4 + _sext(w >> 16, 8), True)
    if op0 == 3:
        return Insn(pc, 3, LOAD if r < 4 else STORE, "lsci")
    if op0 == 4:
        return Insn(pc, 3, MUL, "mac16")
    raise DecodeError("op0 %d at %d" % (op0, pc))


def decode(code):
    """[Insn] of a function's machine code, skipping the table of 32-bit constants that
    the emitter puts first behind a `j` (py/asmxtensa.c, asm_xtensa_entry_win)."""
    out = []
    pc = 0
    if len(code) >= 3:
        first = _wide(0, code[0] | code[1] << 8 | code[2] << 16) if code[0] & 15 < 8 else None
        if first is not None and first.name == "j" and first.target > 3:
            out.append(first)
            pc = first.target
    while pc < len(code):
        b0 = code[pc]
        if 8 <= (b0 & 15) <= 13:
            if pc + 2 > len(code):
                raise DecodeError("truncated at %d" % pc)
            out.append(_narrow(pc, b0 | code[pc + 1] << 8))
            pc += 2
        else:
            if pc + 3 > len(code):
                # the emitter pads the end to a word boundary
                if all(c == 0 for c in code[pc:]):
                    break
                raise DecodeError("truncated at %d" % pc)
            out.append(_wide(pc, b0 | code[pc + 1] << 8 | code[pc + 2] << 16))
            pc += 3
    return out


def counts(insns):
    """{class: number} of a list of instructions."""
    c = dict.fromkeys(CLASSES, 0)
    for i in insns:
        c[i.cls] += 1
    return c


def loops(insns):
    """[(head_pc, latch_pc)] of the backward branches (each closes a loop), by address."""
    return sorted((i.target, i.pc) for i in insns
                  if i.target is not None and i.target <= i.pc and i.name != "j" or
                  (i.name == "j" and i.target is not None and i.target <= i.pc))
