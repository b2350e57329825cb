# A small cache of passes already verified (DESIGN §4: a regular rider costs one signature
# check per tap, not two). Keyed by the pass hash (SHA-256 of the pass bytes; its first 16
# bytes are what proofs bind); an entry holds what the tap needs of the claims and the
# decompressed phone key. Least-recently-used eviction over a fixed number of entries.
#
# Entries are fixed-width rows of one table allocated up front, read and written in place
# (docs/validator.md 'Memory'): a tap on the ESP32-S3 must not leave garbage on its PSRAM
# heap, and an object per pass (~850 bytes with its small bytes/str values on a 64-bit
# heap) made a miss and a hit allocate. The verifier fills the scratch row while it checks
# the claims of a pass it has just verified; commit() then copies the row into the cache.
# The issuer and the operator name are not kept: the issuer is only checked, and whether
# the operator is this validator's is kept as a flag (the verifier's operator is fixed for
# the life of its cache).
import slots

from micropython import const

KEY = const(16)      # the pass hash's first 16 bytes
# an entry: offsets of its fields
E_IAT = const(0)     # u32 big-endian (every time and amount of a token is a uint32)
E_EXP = const(4)
E_ALLOW = const(8)
E_CAT = const(12)    # u8 (categories 0..5)
E_OPOK = const(13)   # 1 if the pass's operator is the verifier's
E_WLEN = const(14)   # wallet id: length, then 16 bytes
E_WALLET = const(15)
E_PLEN = const(31)   # pass id: length, then 16 bytes
E_PASS = const(32)
E_Q = const(48)      # the phone's key x || y, 64 bytes big-endian, checked on the curve
ENTRY = const(112)
SLOT = const(128)    # key | entry


u32 = slots.u32          # the entries' integers: big-endian uint32, read in place
put_u32 = slots.put_u32


class PassCache:
    """Least-recently-used cache of `size` entries, keyed by the pass hash (its first KEY
    bytes count: a whole 32-byte digest may be passed). One more row is the scratch."""

    def __init__(self, size=16):
        self.size = size if size > 0 else 0
        self._buf = bytearray((self.size + 1) * SLOT)
        self._mv = memoryview(self._buf)
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

    def find(self, key):
        """The row of the pass cached under key (now the most recent), or -1."""
        k = slots.find(self._buf, self._n, SLOT, key, KEY) if len(key) >= KEY else -1  # type: ignore[arg-type]
        if k < 0:
            self.misses += 1
            return -1
        self.hits += 1
        self._touch(k)
        return k

    def entry(self, k):
        """Row k's entry (a memoryview of ENTRY bytes, valid until the row is reused)."""
        o = k * SLOT + KEY
        return self._mv[o:o + ENTRY]

    def scratch(self):
        """The scratch row's entry, for the verifier to fill before commit()."""
        return self.entry(self.size)

    def commit(self, key):
        """Cache the scratch entry under key (a free row or the least recently used);
        returns its row. With a cache of size 0 the scratch row itself is returned."""
        if self.size == 0 or len(key) < KEY:
            return self.size
        buf = self._buf
        k = slots.find(buf, self._n, SLOT, key, KEY)  # type: ignore[arg-type]
        if k < 0:
            if self._n < self.size:
                k = self._n
                self._order[k] = k
                self._n += 1
            else:
                k = self._order[0]  # the least recently used makes room
        self._touch(k)
        o = k * SLOT
        mv = self._mv
        for i in range(KEY):
            buf[o + i] = key[i]
        s = self.size * SLOT + KEY
        buf[o + KEY:o + SLOT] = mv[s:s + ENTRY]
        return k

    def clear(self):
        self._n = 0

    def __len__(self):
        return self._n
