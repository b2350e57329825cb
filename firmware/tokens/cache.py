# A small cache of passes already verified (DESIGN §4: a regular rider costs one signature
# check per tap, not two). Keyed by the pass hash (SHA-256 of the pass bytes, 16 bytes —
# what proofs bind too); the value holds the claims and the decompressed phone key.
# Least-recently-used eviction over a fixed number of entries: bounded RAM.
#
# Entries are kept packed (PassInfo.pack, at most ENTRY bytes) in one table allocated up
# front, not as PassInfo objects: an object with ten attributes and six small bytes/str
# values takes ~850 bytes of a 64-bit heap, and sixteen of them are the difference between
# the tap path fitting a small heap or not; the table is 16 x 209 bytes whatever passes
# come, and a miss allocates nothing that stays. A hit unpacks (a few hundred bytes of
# garbage, against the ~0.5 MB the proof's signature check makes anyway).
import struct

from micropython import const

import slots

KEY = const(16)      # the pass hash
ENTRY = const(192)   # room for a packed PassInfo (widest the verifier lets through: 174)
_SLOT = const(209)   # key | length | entry

_HDR = ">QQQB"   # iat, exp, allowance, category; then the length-prefixed fields, then q
_HDR_LEN = 25


class PassInfo:
    """Claims of a pass whose issuer signature has been verified."""

    def __init__(self, kid, iss, iat, exp, wallet_id, pass_id, category, allowance,
                 operator, q):
        self.kid = kid
        self.iss = iss
        self.iat = iat
        self.exp = exp
        self.wallet_id = wallet_id
        self.pass_id = pass_id
        self.category = category
        self.allowance = allowance
        self.operator = operator
        self.q = q  # the phone's public key x||y (64 bytes), checked on the curve

    def pack(self):
        """One bytes object; every field was bounded by the verifier (ids ≤ 16 bytes, iss ≤
        32, operator ≤ 8, integers are CBOR unsigned so < 2^64)."""
        iss = self.iss.encode()
        op = self.operator.encode()
        return b"".join((struct.pack(_HDR, self.iat, self.exp, self.allowance, self.category),
                         bytes((len(self.kid), len(self.wallet_id), len(self.pass_id),
                                len(iss), len(op))),
                         self.kid, self.wallet_id, self.pass_id, iss, op, self.q))

    @staticmethod
    def unpack(b):
        """PassInfo from pack()'s bytes (or a memoryview of them)."""
        iat, exp, allowance, category = struct.unpack_from(_HDR, b, 0)
        p = _HDR_LEN + 5
        fields = []
        for i in range(5):
            n = b[_HDR_LEN + i]
            fields.append(bytes(b[p:p + n]))
            p += n
        kid, wallet, pid, iss, op = fields
        return PassInfo(kid, str(iss, "utf-8"), iat, exp, wallet, pid, category, allowance,
                        str(op, "utf-8"), bytes(b[p:p + 64]))


class PassCache:
    """Least-recently-used cache of `size` packed passes, keyed by the 16-byte pass hash."""

    def __init__(self, size=16):
        self.size = size if size > 0 else 0
        self._buf = bytearray(self.size * _SLOT)
        self._order = bytearray(self.size)  # slot numbers, least recently used first
        self._n = 0
        self.hits = 0
        self.misses = 0

    def _touch(self, k):
        # move slot k to the most recent end of the order
        order = self._order
        n = self._n
        j = 0
        while order[j] != k:
            j += 1
        while j < n - 1:
            order[j] = order[j + 1]
            j += 1
        order[n - 1] = k

    def get(self, key):
        """The PassInfo cached under key, or None."""
        k = slots.find(self._buf, self._n, _SLOT, key, KEY) if len(key) == KEY else -1  # type: ignore[arg-type]
        if k < 0:
            self.misses += 1
            return None
        self.hits += 1
        self._touch(k)
        o = k * _SLOT
        return PassInfo.unpack(memoryview(self._buf)[o + KEY + 1:o + KEY + 1 + self._buf[o + KEY]])

    def put(self, key, info):
        """Cache info under key. A pass too wide for a slot (never one the verifier lets
        through) or a key that is not 16 bytes is not cached."""
        if self.size == 0 or len(key) != KEY:
            return
        b = info.pack()
        if len(b) > ENTRY:
            return
        k = slots.find(self._buf, self._n, _SLOT, key, KEY)  # type: ignore[arg-type]
        if k < 0:
            if self._n < self.size:
                k = self._n
                self._order[k] = k
                self._n += 1
            else:
                k = self._order[0]  # the least recently used makes room
        self._touch(k)
        o = k * _SLOT
        buf = self._buf
        buf[o:o + KEY] = key
        buf[o + KEY] = len(b)
        buf[o + KEY + 1:o + KEY + 1 + len(b)] = b

    def clear(self):
        self._n = 0

    def __len__(self):
        return self._n
