# Offline allowance: how much each pass has spent on this validator, kept on flash.
#
# A pass carries an offline allowance in rupiah (docs/tokens.md: what the wallet operator
# lets a pass spend before the wallet is online again); the validator adds up the fares it
# charged the pass and refuses a tap whose fare would go past it. Sums must survive
# reboots and must not live in RAM (a bus sees thousands of passes in a pass's lifetime),
# so they sit in a hash table on flash: 32 bucket files /data/allowance/NN.bin, each of 64
# slots of 24 bytes: pass key (8, = SHA-256(b"P"+pass_id)[:8], the deny-list key) | rupiah
# spent u32 BE | pass expiry u32 BE | seq of the last tap counted u32 BE | 4 spare.
# Bucket = key[0] % 32, then open addressing from key[1] % 64. An all-zero slot is empty;
# a slot whose pass has expired is free for reuse (the verifier refuses an expired pass
# before it gets here). 2,048 passes, 48 KiB of flash.
#
# Why buckets of 1.5 KiB: LittleFS stores a file as a chain of blocks, and changing bytes
# in the middle of a file rewrites every block from there to its end - one slot update in
# a single 48 KiB table cost ~7 sector erases on the flash model. A bucket fits one block:
# rewriting it (tmp + rename, atomic) costs about one.
#
# Writes are off the tap path: a tap adds its fare to a pending sum in RAM; the loop flushes
# the pending sums of one bucket per idle turn (flush_one). The pending sums sit in one
# table allocated up front (MAX_PENDING slots of 24 bytes: key | rupiah | exp | first seq |
# last seq): a burst of riders with no idle moment between them costs no heap (a dict of
# lists took ~150 bytes a pass, ~10 KB at the bound), and when the table is full the tap
# that finds it so flushes one bucket itself. The journal is the write-ahead
# log: after a power cut, boot re-adds the fares of the journal records after the last
# checkpoint (app/recover.py), and a slot's last seq makes that exact - a tap already
# counted in the slot is not counted again.
import os
import struct

from micropython import const

import slots

from fsutil import write_atomic

SLOT = const(24)
KEY_LEN = const(8)
BUCKETS = const(32)
PER_BUCKET = const(64)
MAX_SPENT = const(0x3FFFFFFF)  # a small int on every port
MAX_PENDING = const(64)        # sums waiting for an idle moment (then flushed at once)
PSLOT = const(24)              # a pending sum: key 8 | rupiah | exp | first | last (u32 BE)


class AllowanceError(Exception):
    pass


def _empty(buf, o):
    # the slot at o has an all-zero key
    for j in range(o, o + KEY_LEN):
        if buf[j]:
            return False
    return True


class AllowanceStore:
    def __init__(self, path, buckets=BUCKETS, per_bucket=PER_BUCKET):
        self.path = path             # a directory
        self.buckets = buckets
        self.per = per_bucket
        self.buf = bytearray(per_bucket * SLOT)
        self._b = -1                 # which bucket self.buf holds
        self._pend = bytearray(MAX_PENDING * PSLOT)  # sums not yet on flash, packed
        self.npending = 0
        self.lost_sums = 0  # sums neither in RAM nor on flash (flash failing): boot re-adds
        self.got_spent = 0  # _slot's answers (no tuple on the tap path)
        self.got_seq = 0

    def open(self):
        try:
            os.stat(self.path)
        except OSError:
            try:
                os.mkdir(self.path)
            except OSError as e:
                raise AllowanceError("cannot create %s: %s" % (self.path, e))
        self._b = -1
        return self

    def close(self):
        self._b = -1

    def _file(self, b):
        return "%s/%02d.bin" % (self.path, b)

    def _load(self, b):
        if self._b == b:
            return self.buf
        buf = self.buf
        n = 0
        try:
            with open(self._file(b), "rb") as f:
                n = f.readinto(buf)
        except OSError as e:
            if e.args and e.args[0] != 2:    # ENOENT: a bucket never written is empty
                self._b = -1
                raise AllowanceError("cannot read %s: %s" % (self._file(b), e))
        if n != len(buf):
            for i in range(len(buf)):
                buf[i] = 0
        self._b = b
        return buf

    def _slot(self, buf, pkey, now):
        """The index of the key in a loaded bucket, or where it would go; its spent and
        last seq in self.got_spent, self.got_seq (0 if new). No tuple and no slice: the
        tap path runs this (docs/validator.md 'Memory')."""
        per = self.per
        i = slots.find(buf, per, SLOT, pkey, KEY_LEN)  # type: ignore[arg-type]
        if i >= 0:   # a key is in its bucket once (slots are reused, never emptied)
            self.got_spent = slots.u32(buf, i * SLOT + 8)
            self.got_seq = slots.u32(buf, i * SLOT + 16)
            return i
        self.got_spent = 0
        self.got_seq = 0
        h = pkey[1] % per
        free = -1
        for p in range(per):
            i = (h + p) % per
            o = i * SLOT
            exp = slots.u32(buf, o + 12)
            if exp == 0 and _empty(buf, o):
                return free if free >= 0 else i   # empty: the key is not further on
            if exp < now and free < 0:
                free = i                           # expired pass: reusable
        if free >= 0:
            return free
        raise AllowanceError("allowance bucket full")

    def find(self, pkey, now):
        """((bucket, index), spent, last seq) of the pass on flash (spent 0 if new).
        AllowanceError if its bucket has no room or cannot be read."""
        b = pkey[0] % self.buckets
        i = self._slot(self._load(b), pkey, now)
        return (b, i), self.got_spent, self.got_seq

    def _put(self, buf, i, pkey, spent, exp, seq):
        o = i * SLOT
        buf[o:o + KEY_LEN] = pkey
        struct.pack_into(">IIII", buf, o + KEY_LEN, min(spent, MAX_SPENT), exp, seq, 0)

    def _save(self, b):
        try:
            write_atomic(self._file(b), self.buf)
        except OSError as e:
            self._b = -1
            raise AllowanceError("cannot write %s: %s" % (self._file(b), e))

    def write(self, slot, pkey, spent, exp, seq):
        """Set one slot on flash now (tests, tools; the tap path uses add/flush_one)."""
        b, i = slot
        buf = self._load(b)
        self._put(buf, i, pkey, spent, exp, seq)
        self._save(b)

    # --- the tap path: RAM only (and one bucket read) -------------------------------------

    def spent(self, pkey, now):
        """Rupiah this pass spent here: on flash plus not yet flushed."""
        self._slot(self._load(pkey[0] % self.buckets), pkey, now)
        spent = self.got_spent
        i = slots.find(self._pend, self.npending, PSLOT, pkey, KEY_LEN)  # type: ignore[arg-type]
        if i >= 0:
            spent += slots.u32(self._pend, i * PSLOT + KEY_LEN)
        return spent

    def add(self, pkey, fare, exp, seq, now=0):
        """Count a journaled tap's fare (RAM; flushed later by flush_one). With the table
        full, one bucket is flushed first (one LittleFS write on this tap)."""
        pend = self._pend
        i = slots.find(pend, self.npending, PSLOT, pkey, KEY_LEN)  # type: ignore[arg-type]
        if i >= 0:
            o = i * PSLOT + KEY_LEN
            # in place, field by field: no tuple on the tap path
            slots.put_u32(pend, o, min(slots.u32(pend, o) + fare, MAX_SPENT))
            if exp > slots.u32(pend, o + 4):
                slots.put_u32(pend, o + 4, exp)
            slots.put_u32(pend, o + 12, seq)
            return
        if self.npending >= MAX_PENDING:
            try:
                self.flush_one(now)
            except AllowanceError:
                # the tap is in the journal, which boot replays; until then the pass's sum
                # here is short by this fare
                self.lost_sums += 1
                return
        o = self.npending * PSLOT
        pend[o:o + KEY_LEN] = pkey
        struct.pack_into(">IIII", pend, o + KEY_LEN, min(fare, MAX_SPENT), exp, seq, seq)
        self.npending += 1

    def full(self):
        return self.npending >= MAX_PENDING

    # --- idle time: one bucket per call -----------------------------------------------------

    def flush_one(self, now):
        """Write the pending sums of one bucket to flash; False when nothing is pending."""
        n = self.npending
        if n == 0:
            return False
        pend = self._pend
        b = pend[0] % self.buckets
        buf = self._load(b)
        for k in range(n):
            o = k * PSLOT
            if pend[o] % self.buckets != b:
                continue
            pkey = bytes(pend[o:o + KEY_LEN])
            fare, exp, _first, last = struct.unpack_from(">IIII", pend, o + KEY_LEN)
            i = self._slot(buf, pkey, now)
            spent = self.got_spent
            seq = self.got_seq
            if seq < last:              # not yet counted there (a replayed record may be)
                self._put(buf, i, pkey, spent + fare, exp, last)
        self._save(b)
        # drop the flushed slots, keeping the others packed at the front
        w = 0
        for k in range(n):
            o = k * PSLOT
            if pend[o] % self.buckets == b:
                continue
            if w != k:
                pend[w * PSLOT:(w + 1) * PSLOT] = pend[o:o + PSLOT]
            w += 1
        self.npending = w
        return True
