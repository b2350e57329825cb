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

SMALL_MIN, SMALL_MAX = -(1 << 30), (1 << 30) - 1
M32 = 0xFFFFFFFF
BASE = 0x3FC88000        # where buffers are placed: an ESP32-S3 data RAM address (> 2^30)
PTR = {"ptr8": 1, "ptr16": 2, "ptr32": 4}
NATIVE = ("int", "uint", "bool")


class Viper32Error(Exception):
    """The code breaks a rule of viper on a 32-bit target (or uses what this tool lacks)."""


class Overflow(Viper32Error):
    """strict: an int/uint intermediate needed more than 32 bits."""


def s32(v):
    v &= M32
    return v - (1 << 32) if v & 0x80000000 else v


def u32(v):
    return v & M32


class _Mem:
    def __init__(self, bufs):
        self.spans = []       # (start, end, bytearray)
        addr = BASE
        for b in bufs:
            self.spans.append((addr, addr + len(b), b))
            addr = (addr + len(b) + 64) & ~15
        self.addr = {id(b): s for s, _, b in self.spans}

    def find(self, addr, size, line):
        for s, e, b in self.spans:
            if s <= addr and addr + size <= e:
                if size > 1 and addr % size:
                    raise Viper32Error("line %d: unaligned %d-byte access at 0x%x" % (line, size, addr))
                return b, addr - s
        raise Viper32Error("line %d: access at 0x%x outside every buffer" % (line, addr))


class _Ctx:
    def __init__(self, name, strict, consts=None):
        self.name, self.strict = name, strict
        self.types = {}
        self.slots = {}
        self.consts = consts or {}   # module-level NAME = const(value): folded by mpy-cross

    def slot(self, name):
        if name not in self.slots:
            self.slots[name] = len(self.slots)
        return self.slots[name]


def _wrap(t, v, exact, strict, line, what):
    w = s32(v) if t == "int" else u32(v)
    if strict and w != exact:
        raise Overflow("line %d: %s = %d needs more than 32 bits (%s)" % (line, what, exact, t))
    return w


class _Compiler:
    def __init__(self, ctx, fn_line):
        self.c = ctx
        self.off = fn_line - 1

    def err(self, node, msg):
        raise Viper32Error("%s line %d: %s" % (self.c.name, node.lineno + self.off, msg))

    # ---- expressions: return (type, closure(frame, mem) -> value)
    def expr(self, n):
        line = getattr(n, "lineno", 0) + self.off
        strict = self.c.strict
        if isinstance(n, ast.Constant) and isinstance(n.value, bool):
            b = n.value
            return "bool", lambda f, m: b
        if isinstance(n, ast.Constant):
            if not isinstance(n.value, int):
                self.err(n, "constant %r is not an integer" % (n.value,))
            v = n.value
            if SMALL_MIN <= v <= SMALL_MAX:
                return "int", lambda f, m: v
            return "obj", lambda f, m: v
        if isinstance(n, ast.Name) and n.id not in self.c.types and n.id in self.c.consts:
            return self.expr(ast.copy_location(ast.Constant(self.c.consts[n.id]), n))
        if isinstance(n, ast.Name):
            if n.id not in self.c.types:
                self.err(n, "name %r is not a local (globals are Python objects)" % n.id)
            t, k = self.c.types[n.id], self.c.slot(n.id)
            return t, lambda f, m: f[k]
        if isinstance(n, ast.Subscript):
            bt, bf = self.expr(n.value)
            if bt not in PTR:
                self.err(n, "subscript of a %s (not a ptr)" % bt)
            it, xf = self.expr(n.slice)
            if it not in ("int", "uint"):
                self.err(n, "index of type %s" % it)
            size = PTR[bt]

            def load(f, m):
                b, o = m.find(u32(bf(f, m) + size * xf(f, m)), size, line)
                v = int.from_bytes(b[o:o + size], "little")
                return s32(v) if size == 4 else v
            return "int", load
        if isinstance(n, ast.UnaryOp):
            t, vf = self.expr(n.operand)
            if isinstance(n.op, ast.Not):
                return "bool", lambda f, m: not vf(f, m)
            if isinstance(n.op, ast.USub) and t in ("int", "uint"):
                return t, lambda f, m: _wrap(t, -vf(f, m), -vf(f, m), strict and t == "int",
                                             line, "-x")
            self.err(n, "unsupported unary operation on %s" % t)
        if isinstance(n, ast.BinOp):
            return self.binop(n, line)
        if isinstance(n, ast.Compare):
            if len(n.ops) != 1:
                self.err(n, "chained comparison")
            lt, lf = self.expr(n.left)
            rt, rf = self.expr(n.comparators[0])
            if lt not in NATIVE or rt not in NATIVE:
                self.err(n, "comparison of a Python object (%s, %s)" % (lt, rt))
            if lt != rt:
                self.err(n, "comparison of %s and %s" % (lt, rt))
            op = type(n.ops[0])
            fns = {ast.Eq: lambda a, b: a == b, ast.NotEq: lambda a, b: a != b,
                   ast.Lt: lambda a, b: a < b, ast.LtE: lambda a, b: a <= b,
                   ast.Gt: lambda a, b: a > b, ast.GtE: lambda a, b: a >= b}
            if op not in fns:
                self.err(n, "unsupported comparison")
            cmp = fns[op]
            return "bool", lambda f, m: cmp(lf(f, m), rf(f, m))
        if isinstance(n, ast.IfExp):
            _, cf = self.expr(n.test)
            at, af = self.expr(n.body)
            bt, bf = self.expr(n.orelse)
            if at != bt:
                self.err(n, "conditional expression of %s and %s" % (at, bt))
            return at, lambda f, m: af(f, m) if cf(f, m) else bf(f, m)
        if isinstance(n, ast.BoolOp):
            parts = [self.expr(v)[1] for v in n.values]
            if isinstance(n.op, ast.And):
                return "bool", lambda f, m: all(p(f, m) for p in parts)
            return "bool", lambda f, m: any(p(f, m) for p in parts)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and len(n.args) == 1:
            name = n.func.id
            t, vf = self.expr(n.args[0])
            if name == "int":
                return "int", lambda f, m: s32(vf(f, m))
            if name == "uint":
                return "uint", lambda f, m: u32(vf(f, m))
            if name in PTR:
                if t == "obj":
                    self.err(n, "%s() of a Python object inside the function" % name)
                return name, lambda f, m: u32(vf(f, m))
        self.err(n, "unsupported expression %s" % type(n).__name__)

    def binop(self, n, line):
        lt, lf = self.expr(n.left)
        rt, rf = self.expr(n.right)
        if lt == "obj" or rt == "obj":
            self.err(n, "a literal outside the 31-bit small-int range is a Python object on "
                        "a 32-bit build: wrap it in uint()/int()")
        if lt in PTR and isinstance(n.op, (ast.Add, ast.Sub)) and rt in ("int", "uint"):
            lt = "uint"   # pointer arithmetic: an address
        if lt not in ("int", "uint") or rt not in ("int", "uint", "bool"):
            self.err(n, "arithmetic on %s and %s" % (lt, rt))
        t = lt
        strict = self.c.strict
        op = type(n.op)

        if op is ast.RShift:
            if t == "uint":
                return t, lambda f, m: u32(lf(f, m)) >> (rf(f, m) & 31)
            return t, lambda f, m: s32(lf(f, m)) >> (rf(f, m) & 31)
        if op is ast.LShift:
            def shl(f, m):
                a, b = lf(f, m), rf(f, m) & 31
                return _wrap(t, a << b, a << b, strict, line, "<<")
            return t, shl
        if op in (ast.BitAnd, ast.BitOr, ast.BitXor):
            g = {ast.BitAnd: lambda a, b: a & b, ast.BitOr: lambda a, b: a | b,
                 ast.BitXor: lambda a, b: a ^ b}[op]
            conv = s32 if t == "int" else u32
            return t, lambda f, m: conv(g(lf(f, m) & M32, rf(f, m) & M32))
        g = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b,
             ast.Mult: lambda a, b: a * b}.get(op)
        if g is None:
            self.err(n, "unsupported operator %s" % op.__name__)
        # the operands as the machine holds them: the right one reinterpreted in t
        conv = s32 if t == "int" else u32
        what = op.__name__

        def arith(f, m):
            a, b = lf(f, m), conv(rf(f, m))
            e = g(a, b)
            return _wrap(t, e, e, strict, line, what)
        return t, arith

    # ---- statements: closure(frame, mem) -> None | "break" | "continue" | ("ret", v)
    def assign_name(self, name, vt, vf, node):
        old = self.c.types.get(name)
        if old is None:
            self.c.types[name] = vt
        elif old != vt and not (old in PTR and vt in ("int", "uint")) and \
                not (old == "bool" and vt == "int"):
            self.err(node, "local %r has type %s but source is %s" % (name, old, vt))
        k = self.c.slot(name)

        def st(f, m):
            f[k] = vf(f, m)
        return st

    def store_sub(self, target, vf, vt, line):
        bt, bf = self.expr(target.value)
        if bt not in PTR:
            self.err(target, "store through a %s" % bt)
        it, xf = self.expr(target.slice)
        if vt not in ("int", "uint", "bool"):
            self.err(target, "store of a %s" % vt)
        size = PTR[bt]

        def st(f, m):
            b, o = m.find(u32(bf(f, m) + size * xf(f, m)), size, line)
            b[o:o + size] = (int(vf(f, m)) & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
        return st

    def stmt(self, n):
        line = getattr(n, "lineno", 0) + self.off
        if isinstance(n, ast.Assign):
            if len(n.targets) != 1:
                self.err(n, "multiple targets")
            vt, vf = self.expr(n.value)
            tg = n.targets[0]
            if isinstance(tg, ast.Name):
                return self.assign_name(tg.id, vt, vf, n)
            if isinstance(tg, ast.Subscript):
                return self.store_sub(tg, vf, vt, line)
            self.err(n, "unsupported assignment target")
        if isinstance(n, ast.AugAssign):
            b = ast.BinOp(left=_load(n.target), op=n.op, right=n.value)
            ast.copy_location(b, n)
            ast.fix_missing_locations(b)
            vt, vf = self.binop(b, line)
            if isinstance(n.target, ast.Name):
                return self.assign_name(n.target.id, vt, vf, n)
            return self.store_sub(n.target, vf, vt, line)
        if isinstance(n, ast.If):
            _, cf = self.expr(n.test)
            body, orelse = self.block(n.body), self.block(n.orelse)
            return lambda f, m: body(f, m) if cf(f, m) else orelse(f, m)
        if isinstance(n, ast.While):
            _, cf = self.expr(n.test)
            body = self.block(n.body)

            def loop(f, m):
                while cf(f, m):
                    r = body(f, m)
                    if r == "break":
                        break
                    if r is not None and r != "continue":
                        return r
            return loop
        if isinstance(n, ast.For):
            return self.for_range(n)
        if isinstance(n, ast.Return):
            if n.value is None:
                return lambda f, m: ("ret", None)
            vt, vf = self.expr(n.value)
            return lambda f, m: ("ret", (vt, vf(f, m)))
        if isinstance(n, ast.Break):
            return lambda f, m: "break"
        if isinstance(n, ast.Continue):
            return lambda f, m: "continue"
        if isinstance(n, ast.Pass) or (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)):
            return lambda f, m: None
        self.err(n, "unsupported statement %s" % type(n).__name__)

    def for_range(self, n):
        it = n.iter
        if not (isinstance(n.target, ast.Name) and isinstance(it, ast.Call) and
                isinstance(it.func, ast.Name) and it.func.id == "range" and 1 <= len(it.args) <= 2):
            self.err(n, "only `for name in range(a[, b])` is supported")
        args = [self.expr(a)[1] for a in it.args]
        if len(args) == 1:
            args = [lambda f, m: 0] + args
        self.c.types.setdefault(n.target.id, "int")
        k = self.c.slot(n.target.id)
        body = self.block(n.body)

        def loop(f, m):
            i, end = args[0](f, m), args[1](f, m)
            while i < end:
                f[k] = i
                r = body(f, m)
                if r == "break":
                    break
                if r is not None and r != "continue":
                    return r
                i = s32(i + 1)
        return loop

    def block(self, stmts):
        fs = [self.stmt(s) for s in stmts]

        def run(f, m):
            for s in fs:
                r = s(f, m)
                if r is not None:
                    return r
        return run


def _load(target):
    t = ast.Name(id=target.id, ctx=ast.Load()) if isinstance(target, ast.Name) else \
        ast.Subscript(value=target.value, slice=target.slice, ctx=ast.Load())
    return ast.copy_location(t, target)


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
