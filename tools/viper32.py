"""Run @micropython.viper functions under the ESP32's 32-bit machine-word rules, in CPython.

Viper integers are machine words: 32 bits on the ESP32, 64 on the x86-64 unix port, so a
pass on the unix port shows nothing about the board, and no registry has MicroPython's
source to build a 32-bit port here. This interpreter runs the viper subset the firmware and
the simulator use, with the rules of py/emitnative.c for a 32-bit target:
  - `int` is int32 and `uint` is uint32: + - * << wrap around at 32 bits;
  - a binary operation takes the type of its left operand; `>>` is arithmetic on `int`
    and logical on `uint`; a comparison needs both sides of the same type;
  - ptr8/ptr16/ptr32 loads give an `int` (ptr32: the 32-bit word, so >= 2^31 is negative);
    stores keep the low 8/16/32 bits; a ptr16/ptr32 access must be aligned (the Xtensa
    core raises LoadStoreAlignment otherwise) and inside a buffer;
  - an integer literal outside the 31-bit small-int range (-2^30 .. 2^30-1) is a Python
    object on a 32-bit build: it may only be cast (uint(0xFFFFFFFF)), never used in
    arithmetic or compared;
  - a local keeps the type of its first assignment.
With strict=True every int/uint operation must also be exact: any wrap-around (an
intermediate that left 32 bits) raises Overflow, with the source line. The tests run each
viper function of firmware/ and sim/ here against Python integers on random and extreme
inputs (tests/host/test_viper32.py).

Supported: assignments (also augmented and to ptr subscripts), if/elif/else, while,
for-in-range, break, continue, return, pass; + - * & | ^ << >> unary -, comparisons,
and/or/not; int() uint() ptr8() ptr16() ptr32(). Anything else is refused (Viper32Error).
"""

import ast
import inspect
import textwrap

from tools.viper32_base import PTR, Overflow, Viper32Error, _Mem, s32, u32  # noqa: F401
from tools.viper32_compile import _Compiler, _Ctx


class ViperFunction:
    """A viper function compiled for 32-bit interpretation. Call it with Python values:
    bytearrays for ptr arguments (they are updated in place), ints for int/uint."""

    def __init__(self, node, strict=False, name=None, consts=None):
        self.name = name or node.name
        self.node = node
        self.ctx = _Ctx(self.name, strict, consts)
        self.params = []
        self.body = None

    def compile(self):
        """Apply the 32-bit rules to the whole function now (raises Viper32Error)."""
        if self.body is None:
            for a in self.node.args.args:
                ann = a.annotation.id if isinstance(a.annotation, ast.Name) else "obj"
                self.params.append((a.arg, ann))
                self.ctx.types[a.arg] = ann
                self.ctx.slot(a.arg)
            self.body = _Compiler(self.ctx, 1).block(self.node.body)
        return self

    def __call__(self, *args):
        self.compile()
        if len(args) != len(self.params):
            raise Viper32Error("%s takes %d arguments" % (self.name, len(self.params)))
        bufs = [a for a in args if isinstance(a, (bytearray, memoryview))]
        mem = _Mem(bufs)
        frame = [0] * (len(self.ctx.slots) + 1)
        for (name, ann), a in zip(self.params, args):
            k = self.ctx.slots[name]
            if ann in PTR:
                if not isinstance(a, (bytearray, memoryview)):
                    raise Viper32Error("%s: %s must be a buffer" % (self.name, name))
                frame[k] = mem.addr[id(a)]
            elif ann == "int":
                frame[k] = s32(a)
            elif ann == "uint":
                frame[k] = u32(a)
            else:
                frame[k] = a
        r = self.body(frame, mem)
        if isinstance(r, tuple) and r[1] is not None:
            t, v = r[1]
            return v
        return None


def functions(source, strict=False):
    """{name: ViperFunction} of every @micropython.viper function in a module's source
    (each is checked when first called, or by .compile())."""
    tree = ast.parse(source)
    consts = {}
    for node in tree.body:   # NAME = const(N) / micropython.const(N): compile-time constants
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and \
                isinstance(node.targets[0], ast.Name) and isinstance(node.value, ast.Call):
            fn = node.value.func
            fname = fn.id if isinstance(fn, ast.Name) else getattr(fn, "attr", "")
            if fname == "const" and len(node.value.args) == 1:
                try:
                    consts[node.targets[0].id] = ast.literal_eval(node.value.args[0])
                except ValueError:
                    pass
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and any(
                isinstance(d, ast.Attribute) and d.attr == "viper" for d in node.decorator_list):
            out[node.name] = ViperFunction(node, strict, consts=consts)
    return out


def from_function(fn, strict=False):
    """ViperFunction of a Python function object's source (tests: planted code)."""
    src = textwrap.dedent(inspect.getsource(fn))
    node = ast.parse(src).body[0]
    return ViperFunction(node, strict)
