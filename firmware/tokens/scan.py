# The token's fast path: its CBOR walked in place, the way every wallet writes it, with no
# object built (docs/tokens.md 'CBOR rules'; docs/validator.md 'Memory': a tap must leave
# no garbage on the S3's PSRAM heap, and decoding into lists, dicts and bytes was ~7 KB of
# a tap's). Each scanner answers True - the bytes are the canonical form and its fields
# are now in the scanner (offsets) or in the cache's scratch entry - or False: "not the
# form I know", never an error. On False the verifier runs the general strict decoder
# (tokens/cbor.py, tokens/general.py), which gives the exact reason or, for an unusual but
# valid encoding (map keys in another order are taken here too; a longer iss is not),
# the same result. So the fast path only decides for input whose general reading is
# certain: every head here is in shortest form and every map has exactly the format's
# keys, each once (tests/host/test_tok_fastpath.py compares the two on generated tokens).
from micropython import const

from tokens import cache as C, fmt

_BSTR = const(2)
_TSTR = const(3)
_UINT = const(0)


class Scan:
    def __init__(self, operator):
        # the token: offsets into its buffer (the pass's Sign1 at 0, the proof's at 7):
        # item start, protected start, protected end, payload start, payload end,
        # signature start, item end; then the kid's start
        self.o = [0] * 15
        self.a = 0              # the argument of the last head read
        self.op = operator.encode() if isinstance(operator, str) else bytes(operator)
        self.odd = False        # the cnf key's y-sign (claims)
        self.pt = 0             # the proof's time, counter
        self.pc = 0
        self.ph = 0             # the proof's pass hash: offset, length
        self.phl = 0
        self.ch = -1            # its challenge: offset (-1: none), length
        self.chl = 0

    def _head(self, b, pos, end, major):
        """The position after a head of `major` at pos with its argument (shortest form,
        at most 32 bits) in self.a; -1 if there is no such head."""
        if pos >= end:
            return -1
        ib = b[pos]
        if ib >> 5 != major:
            return -1
        ai = ib & 31
        if ai < 24:
            self.a = ai
            return pos + 1
        if ai == 24:
            if pos + 2 > end or b[pos + 1] < 24:
                return -1
            self.a = b[pos + 1]
            return pos + 2
        if ai == 25:
            if pos + 3 > end:
                return -1
            v = (b[pos + 1] << 8) | b[pos + 2]
            if v < 0x100:
                return -1
            self.a = v
            return pos + 3
        if ai == 26:
            if pos + 5 > end:
                return -1
            v = (b[pos + 1] << 24) | (b[pos + 2] << 16) | (b[pos + 3] << 8) | b[pos + 4]
            if v < 0x10000:
                return -1
            self.a = v
            return pos + 5
        return -1

    def _bstr(self, b, pos, end):
        """The position after a byte string's head (its length in self.a, its bytes there
        in full); -1 if there is none."""
        pos = self._head(b, pos, end, _BSTR)
        if pos < 0 or self.a > end - pos:
            return -1
        return pos

    def _span(self, b, pos, end, j):
        """A byte string at pos: where its bytes start and end into self.o[j], o[j+1]; the
        position after it, or -1."""
        pos = self._bstr(b, pos, end)
        if pos < 0:
            return -1
        self.o[j] = pos
        pos += self.a
        self.o[j + 1] = pos
        return pos

    # ---- the token: [pass, proof] --------------------------------------------------------

    def token(self, b, end):
        """True if b[0:end] is [pass Sign1, proof Sign1] in the canonical form, offsets in
        self.o."""
        if end < 1 or b[0] != 0x82:
            return False
        pos = self._sign1(b, 1, end, 0)
        if pos < 0:
            return False
        o = self.o
        p = o[1]
        # the pass's protected header: {1: -7, 4: kid(8)}, in either order
        if o[2] - p != 13 or b[p] != 0xA2:
            return False
        if b[p + 1] == 0x01 and b[p + 2] == 0x26 and b[p + 3] == 0x04 and b[p + 4] == 0x48:
            o[14] = p + 5
        elif b[p + 1] == 0x04 and b[p + 2] == 0x48 and b[p + 11] == 0x01 and b[p + 12] == 0x26:
            o[14] = p + 3
        else:
            return False
        pos = self._sign1(b, pos, end, 7)
        if pos != end:
            return False
        p = o[8]
        # the proof's: {1: -7}
        return o[9] - p == 3 and b[p] == 0xA1 and b[p + 1] == 0x01 and b[p + 2] == 0x26

    def _sign1(self, b, pos, end, i):
        # [protected bstr, {}, payload bstr, signature bstr(64)] at pos: its offsets into
        # self.o[i:i+7]; the position after it, or -1
        o = self.o
        o[i] = pos
        if pos >= end or b[pos] != 0x84:
            return -1
        pos = self._span(b, pos + 1, end, i + 1)
        if pos < 0 or pos >= end or b[pos] != 0xA0:
            return -1
        pos = self._span(b, pos + 1, end, i + 3)
        if pos < 0 or pos + 66 > end or b[pos] != 0x58 or b[pos + 1] != 64:
            return -1
        o[i + 5] = pos + 2
        o[i + 6] = pos + 66
        return pos + 66

    # ---- the pass's claims, into the cache's scratch entry ----------------------------------

    def claims(self, b, end, e):
        """True if b[0:end] is the claims map in the canonical form: its fields written
        into e (a cache entry; the cnf key's x at E_Q, its y-sign in self.odd)."""
        if end < 1 or b[0] != 0xA9:
            return False
        pos = 1
        seen = 0
        for _ in range(9):
            if pos >= end:
                return False
            k = b[pos]
            pos += 1
            if k == 0x04 or k == 0x06 or k == 0x23:     # exp, iat, allowance: uint32
                bit = 1 if k == 0x04 else (2 if k == 0x06 else 4)
                pos = self._head(b, pos, end, _UINT)
                if pos < 0:
                    return False
                C.put_u32(e, C.E_EXP if k == 0x04 else (C.E_IAT if k == 0x06 else C.E_ALLOW),
                          self.a)
            elif k == 0x20 or k == 0x21:                 # wallet, pass id: bstr 4..16
                bit = 8 if k == 0x20 else 16
                pos = self._bstr(b, pos, end)
                n = self.a
                if pos < 0 or n < fmt.ID_LEN_MIN or n > fmt.ID_LEN_MAX:
                    return False
                o = C.E_WLEN if k == 0x20 else C.E_PLEN
                e[o] = n
                e[o + 1:o + 1 + n] = b[pos:pos + n]
                pos += n
            elif k == 0x22:                              # category 0..5: one byte
                bit = 32
                if pos >= end or b[pos] >= fmt.N_CATEGORIES:
                    return False
                e[C.E_CAT] = b[pos]
                pos += 1
            elif k == 0x01 or k == 0x24:                 # iss, operator: ASCII text
                bit = 64 if k == 0x01 else 128
                pos = self._head(b, pos, end, _TSTR)
                n = self.a
                if pos < 0 or n > end - pos or (k == 0x01 and n > fmt.ISS_MAX):
                    return False
                j = pos
                pos += n
                if k == 0x24:
                    e[C.E_OPOK] = 1 if n == len(self.op) and same(b, j, n, self.op) else 0
                while j < pos:
                    if b[j] >= 0x80:                     # UTF-8 beyond ASCII: the general way
                        return False
                    j += 1
            elif k == 0x08:                              # cnf: {1: COSE_Key}
                bit = 256
                pos = self._cnf(b, pos, end, e)
                if pos < 0:
                    return False
            else:
                return False
            if seen & bit:
                return False
            seen |= bit
        return pos == end

    def _cnf(self, b, pos, end, e):
        # {1: {1: 2, -1: 1, -2: x bstr(32), -3: bool}}, the COSE_Key's keys in any order
        if pos + 3 > end or b[pos] != 0xA1 or b[pos + 1] != 0x01 or b[pos + 2] != 0xA4:
            return -1
        pos += 3
        seen = 0
        for _ in range(4):
            if pos + 2 > end:
                return -1
            k = b[pos]
            v = b[pos + 1]
            if k == 0x01 and v == 0x02 and not seen & 1:           # kty EC2
                seen |= 1
                pos += 2
            elif k == 0x20 and v == 0x01 and not seen & 2:         # crv P-256
                seen |= 2
                pos += 2
            elif k == 0x22 and (v == 0xF4 or v == 0xF5) and not seen & 4:   # y-sign
                seen |= 4
                self.odd = v == 0xF5
                pos += 2
            elif k == 0x21 and v == 0x58 and not seen & 8:         # x
                if pos + 35 > end or b[pos + 2] != 32:
                    return -1
                seen |= 8
                e[C.E_Q:C.E_Q + 32] = b[pos + 3:pos + 35]
                pos += 35
            else:
                return -1
        return pos

    # ---- the proof's payload ---------------------------------------------------------------

    def proof(self, b, end):
        """True if b[0:end] is the proof map in the canonical form: the pass hash at self.ph
        (self.phl bytes), the challenge at self.ch (-1: none), time and counter in self.pt,
        self.pc."""
        if end < 1 or (b[0] != 0xA3 and b[0] != 0xA4):
            return False
        n = b[0] & 31
        pos = 1
        seen = 0
        self.ch = -1
        for _ in range(n):
            if pos >= end:
                return False
            k = b[pos]
            pos += 1
            if k == 0x01 or k == 0x04:                   # pass hash, challenge: bstr
                bit = 1 if k == 0x01 else 8
                pos = self._bstr(b, pos, end)
                if pos < 0:
                    return False
                if k == 0x01:
                    self.ph = pos
                    self.phl = self.a
                else:
                    self.ch = pos
                    self.chl = self.a
                pos += self.a
            elif k == 0x02 or k == 0x03:                 # time, counter: uint32
                bit = 2 if k == 0x02 else 4
                pos = self._head(b, pos, end, _UINT)
                if pos < 0:
                    return False
                if k == 0x02:
                    self.pt = self.a
                else:
                    self.pc = self.a
            else:
                return False
            if seen & bit:
                return False
            seen |= bit
        # three fields and no challenge (QR), or all four (NFC)
        return pos == end and (seen == 7 if n == 3 else seen == 15)


def same(b, pos, n, ref):
    """b[pos:pos+n] == ref[0:n], without a slice (the caller compares the lengths)."""
    for i in range(n):
        if b[pos + i] != ref[i]:
            return False
    return True
