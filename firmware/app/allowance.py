# Offline allowance: how much each pass has spent on this validator, kept on flash.
#
# A pass carries an offline allowance in rupiah (docs/tokens.md: what the wallet operator
# lets a pass spend before the wallet is online again); the validator adds up the fares it
# charged the pass and refuses a tap whose fare would go past it. Sums must survive
# reboots and must not live in RAM (a bus sees thousands of passes in a pass's lifetime),
# so they sit in a fixed open-addressing hash table in /data/allowance.bin:
# 24-byte slots: pass key (8, = SHA-256(b"P"+pass_id)[:8], the deny-list key) | rupiah
# spent u32 BE | pass expiry u32 BE | seq of the last tap counted u32 BE | 4 spare.
# An all-zero slot is empty; a slot whose pass has expired is free for reuse (the verifier
# refuses an expired pass before it gets here).
#
# Writes are off the tap path (a LittleFS slot update costs ~one 4 KiB erase): a tap adds
# its fare to `pending` in RAM; the loop flushes pending sums one slot per idle turn
# (flush_one). The journal is the write-ahead log: after a power cut, boot re-adds the
# fares of the journal records after the last checkpoint (app/recover.py), and a slot's
# last-seq makes that exact - a tap already counted in the slot is not counted again.
import struct

from micropython import const

SLOT = const(24)
KEY_LEN = const(8)
CAPACITY = const(2048)
MAX_PROBE = const(48)
MAX_SPENT = const(0x3FFFFFFF)  # a small int on every port
MAX_PENDING = const(64)        # sums waiting for an idle moment (then flushed at once)


class AllowanceError(Exception):
    pass


class AllowanceStore:
    def __init__(self, path, capacity=CAPACITY):
        self.path = path
        self.capacity = capacity
        self._f = None
        self._buf = bytearray(SLOT)
        self.pending = {}   # pass key -> [rupiah, exp, first seq, last seq] not yet on flash

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
                zero = bytes(SLOT * 16)
                left = size
                while left > 0:
                    n = min(left, len(zero))
                    f.write(zero if n == len(zero) else zero[:n])
                    left -= n
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
        """(slot, spent, last seq) of the pass on flash; slot is where to write it (spent
        0 if new). AllowanceError if the table has no room along the probe sequence."""
        h = ((pkey[0] << 8) | pkey[1]) % self.capacity
        free = -1
        for p in range(MAX_PROBE):
            i = (h + p) % self.capacity
            b = self._read(i)
            exp = struct.unpack_from(">I", b, 12)[0]
            if exp == 0 and b[0:KEY_LEN] == bytes(KEY_LEN):
                return (free if free >= 0 else i), 0, 0   # empty: the key is not further on
            if b[0:KEY_LEN] == pkey:
                spent, exp, seq = struct.unpack_from(">III", b, 8)
                return i, spent, seq
            if exp < now and free < 0:
                free = i                                    # expired pass: reusable
        if free >= 0:
            return free, 0, 0
        raise AllowanceError("allowance table full")

    def write(self, i, pkey, spent, exp, seq):
        f = self._f
        if f is None:
            raise AllowanceError("store not open")
        if spent > MAX_SPENT:
            spent = MAX_SPENT
        b = self._buf
        b[0:KEY_LEN] = pkey
        struct.pack_into(">IIII", b, KEY_LEN, spent, exp, seq, 0)
        try:
            f.seek(i * SLOT)
            f.write(b)
            f.flush()
        except OSError as e:
            raise AllowanceError("cannot write %s: %s" % (self.path, e))

    # --- the tap path: RAM only ----------------------------------------------------------

    def spent(self, pkey, now):
        """Rupiah this pass spent here: on flash plus not yet flushed."""
        _, spent, _ = self.find(pkey, now)
        p = self.pending.get(pkey)
        return spent + (p[0] if p is not None else 0)

    def add(self, pkey, fare, exp, seq):
        """Count a journaled tap's fare (RAM; flushed later by flush_one)."""
        p = self.pending.get(pkey)
        if p is None:
            self.pending[pkey] = [fare, exp, seq, seq]
        else:
            p[0] += fare
            if exp > p[1]:
                p[1] = exp
            p[3] = seq

    def full(self):
        return len(self.pending) >= MAX_PENDING

    # --- idle time: one slot per call -------------------------------------------------------

    def flush_one(self, now):
        """Write one pending sum to flash; False when nothing is pending."""
        for pkey in self.pending:
            fare, exp, first, last = self.pending[pkey]
            i, spent, seq = self.find(pkey, now)
            if seq < last:              # not yet counted there (a replayed record may be)
                self.write(i, pkey, spent + fare, exp, last)
            del self.pending[pkey]
            return True
        return False
