# Offline allowance: how much each pass has spent on this validator, kept on flash.
#
# A pass carries an offline allowance in rupiah (docs/tokens.md: what the wallet operator
# lets a pass spend before the wallet is online again); the validator adds up the fares it
# charged the pass and refuses a tap whose fare would go past it. Sums must
# survive reboots and must not live in RAM (a bus sees thousands of passes in a pass's
# lifetime), so they sit in a fixed open-addressing hash table in /data/allowance.bin:
# 16-byte slots: pass key (8, = SHA-256(b"P"+pass_id)[:8], the deny-list key) | rupiah
# spent u32 BE | pass expiry u32 BE. An all-zero slot is empty; a slot whose pass has
# expired is free for reuse (the verifier refuses an expired pass before it gets here).
# A lookup is a seek + 16-byte read per probe; an update rewrites one slot and syncs
# (atomic in LittleFS). 2048 slots = 32 KB of flash, 0 bytes of heap besides one buffer.
import struct

from micropython import const

SLOT = const(16)
KEY_LEN = const(8)
CAPACITY = const(2048)
MAX_PROBE = const(48)
MAX_SPENT = const(0x3FFFFFFF)  # a small int on every port


class AllowanceError(Exception):
    pass


class AllowanceStore:
    def __init__(self, path, capacity=CAPACITY):
        self.path = path
        self.capacity = capacity
        self._f = None
        self._buf = bytearray(SLOT)

    def open(self):
        size = self.capacity * SLOT
        try:
            f = open(self.path, "r+b")
            if f.seek(0, 2) != size:
                f.close()
                f = None
        except OSError:
            f = None
        if f is None:
            try:
                f = open(self.path, "wb")
                zero = bytes(256)
                for _ in range(size // 256):
                    f.write(zero)
                f.close()
                f = open(self.path, "r+b")
            except OSError as e:
                raise AllowanceError("cannot create %s: %s" % (self.path, e))
        self._f = f
        return self

    def close(self):
        if self._f is not None:
            self._f.close()
            self._f = None

    def _read(self, i):
        f = self._f
        if f is None:
            raise AllowanceError("store not open")
        try:
            f.seek(i * SLOT)
            if f.readinto(self._buf) != SLOT:
                raise AllowanceError("short read")
        except OSError as e:
            raise AllowanceError("cannot read %s: %s" % (self.path, e))
        return self._buf

    def find(self, pkey, now):
        """(slot, spent) of the pass; slot is where to write it (spent 0 if new).

        AllowanceError if the table has no room along the probe sequence.
        """
        h = ((pkey[0] << 8) | pkey[1]) % self.capacity
        free = -1
        for p in range(MAX_PROBE):
            i = (h + p) % self.capacity
            b = self._read(i)
            exp = struct.unpack_from(">I", b, 12)[0]
            if exp == 0 and b[0:KEY_LEN] == bytes(KEY_LEN):
                return (free if free >= 0 else i), 0     # empty: the key is not further on
            if b[0:KEY_LEN] == pkey:
                return i, struct.unpack_from(">I", b, 8)[0]
            if exp < now and free < 0:
                free = i                                  # expired pass: reusable
        if free >= 0:
            return free, 0
        raise AllowanceError("allowance table full")

    def write(self, i, pkey, spent, exp):
        if spent > MAX_SPENT:
            spent = MAX_SPENT
        f = self._f
        if f is None:
            raise AllowanceError("store not open")
        b = self._buf
        b[0:KEY_LEN] = pkey
        struct.pack_into(">II", b, KEY_LEN, spent, exp)
        try:
            f.seek(i * SLOT)
            f.write(b)
            f.flush()
        except OSError as e:
            raise AllowanceError("cannot write %s: %s" % (self.path, e))
