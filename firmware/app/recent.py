# Replay store and anti-passback, in one small ring of recent taps, in RAM, checkpointed
# to flash when the validator is idle.
#
# One 32-byte slot per checked tap: proof id (16) | wallet key (8) | time u32 BE | flags u8
# | 3 spare. /data/replay.bin = "RCT1" | upto_seq u32 BE | the slots, written whole by
# save() (tmp + rename: after a power cut the file is wholly old or wholly new).
#
# Why not write the ring on every tap: on the flash model a LittleFS write + sync costs
# about one 4 KiB erase and 35-70 ms (docs/validator.md 'Flash'), more than the whole tap
# budget allows. The journal is the write-ahead log instead: every accepted or
# already-paid tap is a journal record carrying its proof id and wallet id, appended
# before the answer. After a power cut, boot loads the last checkpoint and replays the
# journal records after `upto_seq` into the ring (app/recover.py), so the ring is exactly
# what it was when the power went.
#
# Why one ring for both: the replay check needs every proof that could still be fresh,
# anti-passback needs every wallet accepted within passback_s; both are "taps of the last
# minute or two".
#
# A slot may be reused once its tap is older than `horizon` (the longest a proof could
# still pass the freshness check, or passback_s, whichever is longer). If every slot is
# younger than that, a new tap cannot be recorded without forgetting a proof that could
# still be replayed: the caller rejects it as BUSY rather than accept what it cannot check.
# 128 slots hold a tap every 0.7 s for 90 s - more than one door can board.
import struct

import micropython
from micropython import const

import slots
from fsutil import write_atomic

SLOT = const(32)
_PID = const(0)
_WKEY = const(16)
_TIME = const(24)
_FLAGS = const(28)
PID_LEN = const(16)
WKEY_LEN = const(8)
FLAG_USED = const(1)      # slot holds a tap
FLAG_PAID = const(2)      # the tap was accepted (anti-passback counts only these)
CAPACITY = const(128)
HEAD = const(8)           # "RCT1" + upto_seq


class StoreError(Exception):
    pass


@micropython.viper
def _find(buf: ptr8, nslots: int, off: int, key: ptr8, klen: int, need: int) -> int:
    # index of the first slot whose flags contain `need` and whose bytes at `off` equal key
    i = 0
    while i < nslots:
        base = i * SLOT
        if (buf[base + _FLAGS] & need) == need:
            j = 0
            while j < klen:
                if buf[base + off + j] != key[j]:
                    break
                j += 1
            if j == klen:
                return i
        i += 1
    return -1


class RecentTaps:
    def __init__(self, path, capacity=CAPACITY):
        self.path = path
        self.capacity = capacity
        self.buf = bytearray(capacity * SLOT)
        self.upto_seq = 0        # the journal seq the saved file covers
        self.dirty = False

    def open(self):
        """Load the last checkpoint (an empty ring if there is none or it is not one)."""
        buf = self.buf
        ok = False
        try:
            with open(self.path, "rb") as f:
                head = f.read(HEAD)
                if len(head) == HEAD and head[0:4] == b"RCT1" and \
                        f.readinto(buf) == len(buf):
                    self.upto_seq = struct.unpack_from(">I", head, 4)[0]
                    ok = True
        except OSError:
            pass
        if not ok:
            for i in range(len(buf)):
                buf[i] = 0
            self.upto_seq = 0
        self.dirty = False
        return self

    def save(self, upto_seq):
        """Checkpoint the ring as covering the journal up to `upto_seq` (idle time only)."""
        head = bytearray(HEAD)
        head[0:4] = b"RCT1"
        struct.pack_into(">I", head, 4, upto_seq)
        try:
            write_atomic(self.path, (head, self.buf))   # tmp + rename: wholly old or new
        except OSError as e:
            raise StoreError("cannot write %s: %s" % (self.path, e))
        self.upto_seq = upto_seq
        self.dirty = False

    def close(self):
        pass

    def seen_proof(self, pid):
        buf = self.buf
        return _find(buf, self.capacity, _PID, pid, PID_LEN, FLAG_USED) >= 0  # type: ignore[arg-type]

    def paid_within(self, wkey, now, window):
        """True if this wallet was accepted within `window` seconds of `now`."""
        if window <= 0:
            return False
        buf = self.buf
        start = 0
        # a wallet may have several slots (a paid tap, later replays...): check each
        mv = None
        while start < self.capacity:
            n = self.capacity - start
            if start:   # a view only for a second slot of the wallet (rare): no garbage
                if mv is None:
                    mv = memoryview(buf)
                i = _find(mv[start * SLOT:], n, _WKEY, wkey, WKEY_LEN, FLAG_USED | FLAG_PAID)  # type: ignore[arg-type]
            else:
                i = _find(buf, n, _WKEY, wkey, WKEY_LEN, FLAG_USED | FLAG_PAID)  # type: ignore[arg-type]
            if i < 0:
                return False
            i += start
            t = slots.u32(buf, i * SLOT + _TIME)   # no struct tuple: the tap path
            d = now - t
            if -window < d < window:  # a clock set back counts as recent, for a while
                return True
            start = i + 1
        return False

    def free_slot(self, now, horizon):
        """Index of an empty slot or the oldest one older than `horizon`; -1 if none."""
        buf = self.buf
        best, best_t = -1, 0
        for i in range(self.capacity):
            base = i * SLOT
            if not buf[base + _FLAGS] & FLAG_USED:
                return i
            t = slots.u32(buf, base + _TIME)
            if now - t >= horizon or t > now + horizon:  # too old, or from a wrong clock
                if best < 0 or t < best_t:
                    best, best_t = i, t
        return best

    def put(self, i, pid, wkey, t, paid):
        base = i * SLOT
        buf = self.buf
        buf[base:base + PID_LEN] = pid
        buf[base + _WKEY:base + _WKEY + WKEY_LEN] = wkey
        struct.pack_into(">IB", buf, base + _TIME, t, FLAG_USED | (FLAG_PAID if paid else 0))
        self.dirty = True

    def clear(self, i):
        """Undo put() (the journal refused the tap, so it never happened)."""
        base = i * SLOT
        for j in range(base, base + SLOT):
            self.buf[j] = 0
