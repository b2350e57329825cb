# A small cache of passes already verified (DESIGN §4: a regular rider costs one signature
# check per tap, not two). Keyed by the pass hash (SHA-256 of the pass bytes, 16 bytes —
# what proofs bind too); the value holds the claims and the decompressed phone key.
# Least-recently-used eviction over a fixed number of entries: bounded RAM.
#
# Entries are kept packed (PassInfo.pack: one bytes object of ~180 bytes) rather than as
# PassInfo objects: an object with ten attributes and six small bytes/str values takes
# ~850 bytes of a 64-bit heap, the packed form ~250, and sixteen cached passes are the
# difference between the tap path fitting a small heap or not. A hit unpacks (a few
# hundred bytes of garbage, against the ~0.5 MB the proof's signature check makes anyway).
import struct

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
        iat, exp, allowance, category = struct.unpack_from(_HDR, b, 0)
        p = _HDR_LEN + 5
        fields = []
        for i in range(5):
            n = b[_HDR_LEN + i]
            fields.append(b[p:p + n])
            p += n
        kid, wallet, pid, iss, op = fields
        return PassInfo(kid, iss.decode(), iat, exp, wallet, pid, category, allowance,
                        op.decode(), b[p:p + 64])


class PassCache:
    def __init__(self, size=16):
        self.size = size
        self._map = {}
        self._order = []  # least recently used first
        self.hits = 0
        self.misses = 0

    def get(self, key):
        """The PassInfo cached under key, or None."""
        b = self._map.get(key)
        if b is None:
            self.misses += 1
            return None
        self.hits += 1
        order = self._order
        if order[-1] != key:
            order.remove(key)
            order.append(key)
        return PassInfo.unpack(b)

    def put(self, key, info):
        if self.size <= 0:
            return
        if key in self._map:
            self._order.remove(key)
        elif len(self._order) >= self.size:
            del self._map[self._order.pop(0)]
        self._map[key] = info.pack()
        self._order.append(key)

    def clear(self):
        self._map = {}
        self._order = []

    def __len__(self):
        return len(self._order)
