"""Every viper function of firmware/ and sim/ under 32-bit machine-word rules (tools/viper32.py),
against Python integers, on random and extreme inputs; and the check catches what it must.

The unix port's viper words are 64 bits, so the MicroPython tests cannot show that this code
is right on the ESP32; this interpreter applies the 32-bit rules instead.
"""

import ast
import pathlib
import random
import zlib

import pytest

from tools import viper32

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _fns(rel, strict):
    return viper32.functions((ROOT / rel).read_text(), strict=strict)


# ---- the rest of firmware/ and sim/: each against a Python reference

def _crc(name, strict=False):
    return _fns("firmware/crc32.py", strict)["_update"]


def test_crc32_update():
    upd = _crc("_update")
    rng = random.Random(1)
    for data in (b"", b"\xff" * 64, bytes(range(256)), rng.randbytes(300)):
        for start in (0, 0xFFFFFFFF, 0x12345678):
            buf = bytearray(data)
            assert upd(start, buf, 0, len(buf)) == zlib.crc32(data, start)
    buf = bytearray(b"abcdef")
    assert upd(0, buf, 2, 5) == zlib.crc32(b"cde")


def test_base45_triplets():
    import base64  # noqa: F401  (reference below is RFC 9285 by hand)
    f = _fns("firmware/tokens/base45.py", True)["_triplets"]
    alpha = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"
    val = bytearray(b"\xff" * 256)
    for i, ch in enumerate(alpha):
        val[ch] = i
    rng = random.Random(9)
    for data in (b"", b"\xff\xff", bytes(range(256)), rng.randbytes(200)):
        data = data[:len(data) // 2 * 2]
        txt = bytearray()
        for i in range(0, len(data), 2):
            v = data[i] * 256 + data[i + 1]
            txt += bytes([alpha[v % 45], alpha[(v // 45) % 45], alpha[v // 2025]])
        out = bytearray(len(data))
        assert f(txt, len(data) // 2, out, val) == 0 and bytes(out) == data
    assert f(bytearray(b"GGW"), 1, bytearray(2), val) == 1          # 65,536: out of range
    assert f(bytearray(b"000a00"), 2, bytearray(4), val) == 2       # a bad character


def test_slots_find():
    find = _fns("firmware/slots.py", True)["find"]
    buf = bytearray(b"aaaa" b"abcd" b"abce" b"zzzz")
    for key, want in ((b"abc", 1), (b"abce", 2), (b"zz", 3), (b"q", -1), (b"", 0)):
        assert find(buf, 4, 4, bytearray(key or b"x"), len(key)) == want


def test_recent_find():
    f = _fns("firmware/app/recent.py", True)["_find"]
    slot, flags = 32, 28
    buf = bytearray(slot * 3)
    buf[slot + 4:slot + 8] = b"KEY1"
    buf[slot + flags] = 2
    buf[2 * slot + 4:2 * slot + 8] = b"KEY1"
    buf[2 * slot + flags] = 3
    assert f(buf, 3, 4, bytearray(b"KEY1"), 4, 2) == 1
    assert f(buf, 3, 4, bytearray(b"KEY1"), 4, 1) == 2
    assert f(buf, 3, 4, bytearray(b"KEY2"), 4, 0) == -1


def test_journal_all_ff():
    f = _fns("firmware/journal/format.py", True)["_all_ff"]
    assert f(bytearray(b"\xff" * 40), 40) == 1
    assert f(bytearray(b"\xff" * 39 + b"\xfe"), 40) == 0
    assert f(bytearray(b"\xfe"), 0) == 1


def test_bundles_ascending():
    f = _fns("firmware/bundles.py", True)["_ascending"]
    entries = b"".join(i.to_bytes(8, "big") for i in (1, 5, 9, 2**63 + 1))
    prev = bytearray(8)
    assert f(bytearray(entries), 0, len(entries), prev, 1) == 1 and prev == entries[-8:]
    assert f(bytearray(entries), 0, 16, bytearray((7).to_bytes(8, "big")), 0) == 0
    bad = (5).to_bytes(8, "big") * 2
    assert f(bytearray(bad), 0, 16, bytearray(8), 1) == 0


def _xorshift(x):
    x = (x ^ (x << 13)) & 0xFFFFFFFF
    x ^= x >> 17
    return (x ^ (x << 5)) & 0xFFFFFFFF


def test_flashdev_helpers():
    fns = _fns("sim/vboard/flashdev.py", False)
    dst = bytearray(b"\xf0" * 8)
    fns["_and_into"](dst, 1, bytearray(b"\x3c\x0f"), 0, 2)
    assert dst[:4] == b"\xf0\x30\x00\xf0"
    fns["_copy"](dst, 4, bytearray(b"wxyz"), 1, 3)
    assert dst[4:8] == b"xyz\xf0"
    fns["_fill_ff"](dst, 0, 3)
    assert dst[:3] == b"\xff\xff\xff"
    buf = bytearray(16)
    out = fns["_or_noise"](buf, 0, 16, 99)
    x = 99
    for i in range(16):
        x = _xorshift(x)
        assert buf[i] == x & 0xFF
    assert out == x & 0x3FFFFFFF
    state = bytearray(4)
    for seed in (0, 1, 2**31 - 1, 12345):
        fns["_rng_seed"](state, seed)
        want = (seed * 2654435761 + 12345) & 0xFFFFFFFF or 1
        assert int.from_bytes(state, "little") == want
        assert fns["_rng_next"](state) == _xorshift(want) & 0x3FFFFFFF


def test_engine_rev():
    rev = _fns("firmware/p256_engine.py", strict=True)["rev"]
    src = bytes(range(200, 256)) + bytes(range(8))
    for doff, soff, n in ((0, 0, 32), (5, 32, 32), (0, 63, 1), (3, 10, 0)):
        dst = bytearray(b"\xAA" * 80)
        rev(dst, doff, bytearray(src), soff, n)
        assert bytes(dst[doff:doff + n]) == src[soff:soff + n][::-1]
        assert dst[:doff] == b"\xAA" * doff and dst[doff + n:] == b"\xAA" * (80 - doff - n)


def test_p256_cmp32():
    cmp32 = _fns("firmware/tokens/p256.py", strict=True)["_cmp32"]
    n = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
    nb = n.to_bytes(32, "big")
    for v in (0, 1, n - 1, n, n + 1, 2 ** 256 - 1, 2 ** 255, 0x80 << 240, 0xFF):
        for off in (0, 32):
            buf = bytearray(64)
            buf[off:off + 32] = v.to_bytes(32, "big")
            assert cmp32(buf, off, bytearray(nb)) == (v > n) - (v < n), (hex(v), off)


def _viper_functions():
    out = set()
    for base in ("firmware", "sim"):
        for f in sorted((ROOT / base).rglob("*.py")):
            for node in ast.walk(ast.parse(f.read_text())):
                if isinstance(node, ast.FunctionDef) and any(
                        isinstance(d, ast.Attribute) and d.attr == "viper"
                        for d in node.decorator_list):
                    out.add("%s:%s" % (f.relative_to(ROOT).as_posix(), node.name))
    return out


COVERED = {
    "firmware/p256_engine.py:run", "firmware/p256_engine.py:inv",
    "firmware/p256_engine.py:wnaf", "firmware/p256_engine.py:rev", "firmware/crc32.py:_update",
    "firmware/tokens/base45.py:_triplets", "firmware/slots.py:find",
    "firmware/tokens/p256.py:_cmp32",
    "firmware/app/recent.py:_find", "firmware/journal/format.py:_all_ff",
    "firmware/bundles.py:_ascending", "sim/vboard/flashdev.py:_and_into",
    "sim/vboard/flashdev.py:_copy", "sim/vboard/flashdev.py:_fill_ff",
    "sim/vboard/flashdev.py:_or_noise", "sim/vboard/flashdev.py:_rng_next",
    "sim/vboard/flashdev.py:_rng_seed",
}


def test_every_viper_function_of_the_tree_is_checked():
    found = _viper_functions()
    assert found == COVERED, ("viper functions without a 32-bit test: %s; tests of functions "
                              "that are gone: %s" % (sorted(found - COVERED),
                                                     sorted(COVERED - found)))
    for name in found:   # and each compiles under the 32-bit rules
        path, fn = name.split(":")
        _fns(path, False)[fn].compile()


# ---- the check catches what it must

PLANTED = '''
import micropython

@micropython.viper
def column16(a: ptr16, b: ptr16) -> int:
    # a column of 17 products of 16-bit limbs: the sum needs 36 bits
    c = 0
    i = 0
    while i < 17:
        c = c + a[i] * b[16 - i]
        i += 1
    return c & 0xFFFF

@micropython.viper
def big_literal(x: int) -> int:
    return x & 0xFFFFFFFF

@micropython.viper
def shifts(x: int) -> int:
    return (x >> 4) - int(uint(x) >> 4)

@micropython.viper
def word(p: ptr32) -> int:
    return p[0]
'''


def test_a_planted_overflow_is_caught():
    fns = viper32.functions(PLANTED, strict=True)
    a = bytearray(b"\xff\xff" * 17)
    with pytest.raises(viper32.Overflow, match="line 10"):
        fns["column16"](a, bytearray(a))
    # without strict the 32-bit answer differs from the exact one: that is the bug
    loose = viper32.functions(PLANTED, strict=False)["column16"](a, bytearray(a))
    assert loose == (17 * 0xFFFF * 0xFFFF) & 0xFFFF  # low bits survive; the carry would not
    # even one such product is above 2^31 (an int is signed); 13-bit limbs, as the engine
    # uses, fit: 17 products of 0x1FFF * 0x1FFF sum below 2^31
    b = bytearray(b"\xff\x1f" * 17)
    assert fns["column16"](b, bytearray(b)) == (17 * 0x1FFF * 0x1FFF) & 0xFFFF


def test_32_bit_rules_are_applied():
    fns = viper32.functions(PLANTED, strict=False)
    with pytest.raises(viper32.Viper32Error, match="small-int"):
        fns["big_literal"](5)
    with pytest.raises(viper32.Viper32Error, match="comparison of uint and int"):
        viper32.functions("import micropython\n@micropython.viper\ndef f(x: uint) -> int:\n"
                          "    if x == 0:\n        return 1\n    return 0\n")["f"].compile()
    assert fns["shifts"](-256) == -16 - ((2**32 - 256) >> 4)   # arithmetic vs logical
    assert fns["word"](bytearray(b"\xff\xff\xff\xff")) == -1  # a 32-bit word is an int
    with pytest.raises(viper32.Viper32Error, match="unaligned"):
        viper32.functions("import micropython\n@micropython.viper\ndef f(p: ptr16) -> int:\n"
                          "    q = ptr16(uint(p) + 1)\n    return q[0]\n")["f"](bytearray(4))
