# Strict, bounded CBOR (RFC 8949) for the token format, and a small encoder.
#
# The decoder accepts only what the format needs and only one encoding of it, so that a
# token has exactly one byte form (its hash is what a proof binds):
#   - major types 0-5 and the simple values false/true/null; no tags, no floats;
#   - definite lengths only; every integer and length in its shortest form;
#   - text must be UTF-8; map keys int or text, no duplicates;
#   - nesting depth and the number of items are bounded, and a declared length is checked
#     against the bytes actually left *before* anything is allocated, so a huge declared
#     length costs nothing.
# Errors raise TokenError(BAD_CBOR) — the verifier turns it into a reason code.
from tokens.errors import TokenError
from tokens.reasons import BAD_CBOR

MAX_DEPTH = 6
MAX_ITEMS = 128


class Decoder:
    """decode(buf, pos, end) -> (value, next pos); one instance per buffer walk."""

    def __init__(self, max_depth=MAX_DEPTH, max_items=MAX_ITEMS):
        self.max_depth = max_depth
        self.max_items = max_items
        self.items = 0

    def head(self, buf, pos, end):
        """(major, argument, pos after the head) with shortest-form checks."""
        if pos >= end:
            raise TokenError(BAD_CBOR, "truncated")
        ib = buf[pos]
        major = ib >> 5
        ai = ib & 31
        pos += 1
        if ai < 24:
            return major, ai, pos
        if ai > 27:
            raise TokenError(BAD_CBOR, "indefinite length or reserved")
        n = 1 << (ai - 24)
        if pos + n > end:
            raise TokenError(BAD_CBOR, "truncated")
        v = 0
        for i in range(pos, pos + n):
            v = (v << 8) | buf[i]
        if v < (24 if n == 1 else 1 << (4 * n)):
            raise TokenError(BAD_CBOR, "not shortest form")
        return major, v, pos + n

    def decode(self, buf, pos, end, depth=0):
        """(the item at buf[pos:end], the position after it), nested items included.

        One loop with an explicit stack of open containers, not a call per item: a call
        of a function with this many locals allocates its frame on the heap in MicroPython
        (py/objfun.c, VM_MAX_STATE_ON_STACK), and returned (value, pos) pairs are tuples:
        a token's ~60 items cost ~12 KB of allocations that way."""
        stack = []  # type: list  # open containers: [list or dict, items still to come, key]
        maxd = self.max_depth
        while True:
            if depth + len(stack) > maxd:
                raise TokenError(BAD_CBOR, "too deep")
            self.items += 1
            if self.items > self.max_items:
                raise TokenError(BAD_CBOR, "too many items")
            if pos >= end:
                raise TokenError(BAD_CBOR, "truncated")
            ib = buf[pos]
            major = ib >> 5
            v = ib & 31
            pos += 1
            if v >= 24:
                if v > 27:
                    raise TokenError(BAD_CBOR, "indefinite length or reserved")
                n = 1 << (v - 24)
                if pos + n > end:
                    raise TokenError(BAD_CBOR, "truncated")
                v = 0
                i = pos
                pos += n
                while i < pos:
                    v = (v << 8) | buf[i]
                    i += 1
                if v < (24 if n == 1 else 1 << (4 * n)):
                    raise TokenError(BAD_CBOR, "not shortest form")
            if major == 0:
                val = v
            elif major == 1:
                val = -1 - v
            elif major == 2 or major == 3:
                if v > end - pos:
                    raise TokenError(BAD_CBOR, "string longer than the data")
                if isinstance(buf, bytes):
                    val = buf[pos:pos + v]
                else:
                    val = bytes(memoryview(buf)[pos:pos + v])
                pos += v
                if major == 3:
                    try:
                        val = str(val, "utf-8")  # MicroPython validates UTF-8 here
                    except Exception:  # UnicodeError
                        raise TokenError(BAD_CBOR, "bad utf-8")
            elif major == 4:
                if v > end - pos:  # every item takes at least one byte
                    raise TokenError(BAD_CBOR, "array longer than the data")
                if v:
                    stack.append([[], v, _NOKEY])
                    continue
                val = []
            elif major == 5:
                if 2 * v > end - pos:
                    raise TokenError(BAD_CBOR, "map longer than the data")
                if v:
                    stack.append([{}, v, _NOKEY])
                    continue
                val = {}
            elif major == 7:
                if v == 20:
                    val = False
                elif v == 21:
                    val = True
                elif v == 22:
                    val = None
                else:
                    raise TokenError(BAD_CBOR, "float or simple value")
            else:
                raise TokenError(BAD_CBOR, "tag")  # major 6
            # the item is whole: into its container; a container whole in turn is an item
            while stack:
                top = stack[-1]
                c = top[0]
                if isinstance(c, dict):
                    if top[2] is _NOKEY:
                        if not isinstance(val, (int, str)) or isinstance(val, bool):
                            raise TokenError(BAD_CBOR, "map key type")
                        if val in c:
                            raise TokenError(BAD_CBOR, "duplicate map key")
                        top[2] = val
                        break              # its value comes next
                    c[top[2]] = val
                    top[2] = _NOKEY
                else:
                    c.append(val)
                top[1] -= 1
                if top[1]:
                    break
                stack.pop()
                val = c
            else:
                return val, pos


_NOKEY = object()   # a map entry whose key has not come yet


def loads(buf, start=0, end=-1, max_depth=MAX_DEPTH, max_items=MAX_ITEMS):
    """The one CBOR item in buf[start:end]; trailing bytes are an error."""
    if end < 0:
        end = len(buf)
    v, pos = Decoder(max_depth, max_items).decode(buf, start, end)
    if pos != end:
        raise TokenError(BAD_CBOR, "trailing bytes")
    return v


# ---- encoder: the heads the Sig_structure needs (the whole deterministic encoder is in
# tokens/cbor_enc.py, off the tap path: the validator itself never encodes a token) ----

def head(major, n):
    """CBOR head bytes for major type and argument n (0 <= n < 2^64)."""
    m = major << 5
    if n < 24:
        return bytes((m | n,))
    if n < 0x100:
        return bytes((m | 24, n))
    if n < 0x10000:
        return bytes((m | 25, n >> 8, n & 0xFF))
    if n < 0x100000000:
        return bytes((m | 26,)) + n.to_bytes(4, "big")
    if n < 0x10000000000000000:
        return bytes((m | 27,)) + n.to_bytes(8, "big")
    raise ValueError("int out of CBOR range")
