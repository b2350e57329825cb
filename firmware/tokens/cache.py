# A small cache of passes already verified (DESIGN §4: a regular rider costs one signature
# check per tap, not two). Keyed by the pass hash (SHA-256 of the pass bytes, 16 bytes —
# what proofs bind too); the value holds the claims and the decompressed phone key.
# Least-recently-used eviction over a fixed number of entries: bounded RAM.


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


class PassCache:
    def __init__(self, size=16):
        self.size = size
        self._map = {}
        self._order = []  # least recently used first
        self.hits = 0
        self.misses = 0

    def get(self, key):
        info = self._map.get(key)
        if info is None:
            self.misses += 1
            return None
        self.hits += 1
        order = self._order
        if order[-1] != key:
            order.remove(key)
            order.append(key)
        return info

    def put(self, key, info):
        if self.size <= 0:
            return
        if key in self._map:
            self._order.remove(key)
        elif len(self._order) >= self.size:
            del self._map[self._order.pop(0)]
        self._map[key] = info
        self._order.append(key)

    def clear(self):
        self._map = {}
        self._order = []

    def __len__(self):
        return len(self._order)
