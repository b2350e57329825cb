"""The compiler half of tools/viper32.py: a viper function's AST to Python closures that
compute with 32-bit words (py/emitnative.c's rules for a 32-bit target; see viper32.py)."""

import ast

from tools.viper32_base import NATIVE, PTR, SMALL_MAX, SMALL_MIN, M32, Overflow, \
    Viper32Error, s32, u32


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


