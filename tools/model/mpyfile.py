"""Read the machine code of every native/viper function out of a .mpy file.

The layout is MicroPython's .mpy v6 (py/persistentcode.c; tools/mpy-tool.py reads the same
structure): a header, the qstr and constant tables, then a tree of raw codes. A raw code's
first varint is (length << 3) | (has_children << 2) | kind; native code is followed by its
prelude offset (@native) or scope flags and the viper extras (rodata, bss, relocations).
Viper functions carry no name in the file, so names are matched to the module's
top-level `def`s in source order (children of the module are stored in that order).
"""

import ast

KIND_BYTECODE, KIND_NATIVE, KIND_VIPER, KIND_ASM = 2, 3, 4, 5
_FLAG_RELOC, _FLAG_RODATA, _FLAG_BSS = 0x10, 0x20, 0x40
ARCH_XTENSAWIN = 10


class MpyError(Exception):
    """The file is not a .mpy this reader understands."""


class _Reader:
    def __init__(self, data):
        self.d = data
        self.i = 0

    def byte(self):
        if self.i >= len(self.d):
            raise MpyError("truncated .mpy")
        b = self.d[self.i]
        self.i += 1
        return b

    def bytes(self, n):
        if self.i + n > len(self.d):
            raise MpyError("truncated .mpy")
        b = self.d[self.i:self.i + n]
        self.i += n
        return b

    def uint(self):
        v = 0
        while True:
            b = self.byte()
            v = (v << 7) | (b & 0x7F)
            if not b & 0x80:
                return v


class RawCode:
    def __init__(self, kind, code, children):
        self.kind = kind
        self.code = code          # machine code (native/viper) or bytecode
        self.children = children
        self.name = None


def _skip_obj(r):
    t = r.byte()
    if t in (0, 1, 2, 3, 4):   # fun table, None, False, True, Ellipsis
        return
    if t == 10:                # tuple
        for _ in range(r.uint()):
            _skip_obj(r)
        return
    n = r.uint()
    r.bytes(n)
    if t in (5, 6):            # str, bytes: NUL terminated
        r.byte()


def _raw_code(r):
    kind_len = r.uint()
    kind = (kind_len & 3) + KIND_BYTECODE
    has_children = (kind_len >> 2) & 1
    data = r.bytes(kind_len >> 3)
    code = data
    if kind == KIND_NATIVE:
        # machine code ends where the prelude starts, and begins with one data word (the
        # prelude's index: py/emitnative.c, emit_native_start_pass; a generator has a
        # second one, and the firmware has no native generators: decoding would fail)
        code = data[4:r.uint()]
    elif kind in (KIND_VIPER, KIND_ASM):
        flags = r.uint()
        if kind == KIND_VIPER:
            rodata = r.uint() if flags & _FLAG_RODATA else 0
            if flags & _FLAG_BSS:
                r.uint()
            if rodata:
                r.bytes(rodata)
            if flags & _FLAG_RELOC:
                while True:
                    op = r.byte()
                    if op == 0xFF:
                        break
                    if op & 1:
                        r.uint()
                    op >>= 1
                    if op <= 5 and op & 1:
                        r.uint()
        else:
            r.uint()
            r.uint()
    children = []
    if has_children:
        children = [_raw_code(r) for _ in range(r.uint())]
    return RawCode(kind, code, children)


def read(data):
    """(arch, module RawCode) of .mpy bytes."""
    r = _Reader(data)
    hdr = r.bytes(4)
    if hdr[0] != ord("M") or hdr[1] != 6:
        raise MpyError("not a .mpy v6 file")
    arch = (hdr[2] >> 2) & 0x2F
    if hdr[2] & 0x40:
        r.uint()
    nq, no = r.uint(), r.uint()
    for _ in range(nq):
        n = r.uint()
        if not n & 1:
            r.bytes((n >> 1) + 1)
    for _ in range(no):
        _skip_obj(r)
    return arch, _raw_code(r)


def _scopes(tree):
    """Names of the module's child scopes in source order (defs, classes, lambdas and
    comprehensions at module level, which is what the compiler makes children of)."""
    out = []

    def visit(node):
        for ch in ast.iter_child_nodes(node):
            if isinstance(ch, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                out.append(ch.name)
            elif isinstance(ch, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp,
                                 ast.GeneratorExp)):
                out.append("<%s>" % type(ch).__name__.lower())
            else:
                visit(ch)
    visit(tree)
    return out


def functions(data, source=None):
    """[(name, kind, machine code)] of the native and viper functions anywhere in the
    module (names of top-level ones from `source` when given)."""
    _, mod = read(data)
    if source is not None:
        names = _scopes(ast.parse(source))
        if len(names) == len(mod.children):
            for rc, n in zip(mod.children, names):
                rc.name = n
    out = []

    def walk(rc, prefix):
        for i, ch in enumerate(rc.children):
            name = prefix + (ch.name or "#%d" % i)
            if ch.kind in (KIND_NATIVE, KIND_VIPER, KIND_ASM):
                out.append((name, ch.kind, ch.code))
            walk(ch, name + ".")
    walk(mod, "")
    return out
