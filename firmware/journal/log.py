# The journal: an append-only log of tap records on a raw flash partition.
#
# Layout (format.py, docs/journal.md): sectors 0-1 hold acks (acks.py), the rest are a
# ring of data sectors. The head sector takes appends; the tail is the oldest sector that
# still holds an unsent record; sectors behind the tail are free and are erased only when
# the head is about to enter them — ahead of time by maintain(), else by append() itself.
# Recovery never trusts RAM: the head is the valid sector header with the largest epoch,
# the tail is found by walking headers back from it, the write position by reading the
# head's records until the first one that does not check.

from micropython import const
from unload import forget

from .acks import AckStore
from .errors import BadRecord, JournalError, JournalFull, NotMounted
from .format import (
    ACK_SECTORS,
    MAX_PAYLOAD,
    REC_OVERHEAD,
    RW_BUF,
    SEC_HDR,
    SECTOR,
    U32,
    blank,
    pack_record,
    pack_sector_header,
    parse_sector_header,
)

TYPICAL_PAYLOAD = const(60)  # for status().free_records: a CBOR tap record is ~40-60 bytes


def _boot_mount(j):
    from journal import recovery  # boot-only code (journal/recovery.py), released after the mount
    recovery.mount(j)


class JournalStatus:
    """What status()/mount() report. Counts are records; free/capacity are bytes."""

    def __init__(self):
        self.count = 0             # records held on flash (unsent + acked not yet reused)
        self.unsent = 0            # records not yet acknowledged by the depot
        self.last_seq = 0          # seq of the newest record (0: none yet)
        self.acked_seq = 0         # everything <= this is acknowledged
        self.first_seq = 1         # oldest seq since() always returns (unacked are after it)
        self.oldest_unsent_t = None  # t of the oldest unsent record, None if none
        self.last_t = 0            # t of the newest record still known (0: none)
        self.incarnation = 0       # this journal's random id, made when it was formatted
        self.free = 0              # bytes available for records before the journal is full
        self.free_records = 0      # taps of TYPICAL_PAYLOAD bytes that still fit
        self.capacity = 0          # bytes for records when the journal is empty
        self.full = False          # a typical tap no longer fits: append raises JournalFull
        self.nearly_full = False   # less than nearly_full_pct % free: go to the depot soon
        self.formatted = False     # mount(): the partition held no journal and was set up
        self.torn = 0              # mount(): torn writes found (records or acks cut by power)
        self.lost = 0              # unsent records missing (never expected; see docs)


class Journal:
    """See the contract at the top of journal/__init__.py."""

    def __init__(self, part, nearly_full_pct=10):
        self._part = part          # esp32.Partition-like: readblocks/writeblocks/ioctl
        self._pct = nearly_full_pct
        self._buf = bytearray(RW_BUF)
        self._mv = memoryview(self._buf)
        self._acks = AckStore(part, self._buf)
        self._nd = 0               # data sectors; 0 until mount()
        self._head = 0
        self._epoch = 0
        self._wpos = SECTOR
        self._tail = 0
        self._tail_base = 1
        self._next_seq = 1
        self._ahead_ready = False  # the sector after the head is known erased
        self._oldest_t = None
        self._last_t = 0           # t of the newest record (the clock's floor, sync/auth.py)
        self.incarnation = 0       # random id made when the journal was formatted (mount)
        self._formatted = False
        self._torn = 0

    # -- flash access --------------------------------------------------------------
    def _read(self, sector, off, n):
        self._part.readblocks(ACK_SECTORS + sector, self._mv[0:n] if n < RW_BUF else self._buf,
                              off)

    def _header(self, sector):
        self._read(sector, 0, SEC_HDR)
        return parse_sector_header(self._buf)

    def _blank_from(self, sector, off):
        while off < SECTOR:
            n = SECTOR - off if SECTOR - off < RW_BUF else RW_BUF
            self._read(sector, off, n)
            if not blank(self._buf, n):
                return False
            off += n
        return True

    def _erase(self, sector):
        self._part.ioctl(6, ACK_SECTORS + sector)

    def _open(self, sector, epoch, base):
        # cut during the erase or header write: the sector has no valid header, mount()
        # keeps the previous head and this sector is erased again next time
        if not self._ahead_ready:
            self._erase(sector)
        pack_sector_header(self._buf, epoch, base, self.incarnation)
        self._part.writeblocks(ACK_SECTORS + sector, self._mv[0:SEC_HDR], 0)
        self._head, self._epoch, self._wpos = sector, epoch, SEC_HDR
        self._ahead_ready = False

    # -- boot ----------------------------------------------------------------------
    def mount(self):
        """Recover the journal from flash (formatting a blank one); returns status()."""
        try:
            _boot_mount(self)
        finally:
            forget("journal.recovery")
        return self.status()

    def _free_sector(self, s):
        # free = not between tail and head (the ring's live part)
        return (s - self._tail) % self._nd > (self._head - self._tail) % self._nd

    def _first_unsent(self):
        a = self._acks.acked + 1
        return a if a > self._tail_base else self._tail_base

    def _unsent(self):
        return self._next_seq - self._first_unsent()

    def _check(self):
        if not self._nd:
            raise NotMounted("journal not mounted")

    # -- the contract --------------------------------------------------------------
    def append(self, payload, t):
        """Store one record; durable when this returns its seq. Raises JournalFull, BadRecord."""
        self._check()
        if not isinstance(payload, (bytes, bytearray, memoryview)):
            raise BadRecord("payload must be bytes")
        n = len(payload)
        if n == 0 or n > MAX_PAYLOAD:
            raise BadRecord("payload must be 1..%d bytes" % MAX_PAYLOAD)
        if not isinstance(t, int) or t < 0 or t > U32:
            raise BadRecord("t must be a u32")
        if self._wpos + n + REC_OVERHEAD > SECTOR:
            a = (self._head + 1) % self._nd
            if not self._free_sector(a):
                raise JournalFull("journal full of unsent taps")
            self._guard(self._open, a, self._epoch + 1, self._next_seq)
            if self._next_seq - 1 <= self._acks.acked:
                self._tail, self._tail_base = a, self._next_seq
        seq = self._next_seq
        k = pack_record(self._buf, seq, t, payload)
        try:  # inline, not via _guard: no bound-method object per tap
            self._part.writeblocks(ACK_SECTORS + self._head, self._mv[0:k], self._wpos)
        except OSError as e:
            self._wpos = SECTOR
            self._ahead_ready = False
            raise JournalError("flash write failed: %s" % e)
        self._wpos += k
        self._next_seq = seq + 1
        self._last_t = t
        if self._oldest_t is None:
            self._oldest_t = t
        return seq

    def _guard(self, fn, a, b, c):
        # a flash driver error (OSError) becomes a JournalError; the head is closed so the
        # next append starts a fresh sector instead of programming over unknown bytes
        try:
            fn(a, b, c)
        except OSError as e:
            self._wpos = SECTOR
            self._ahead_ready = False
            raise JournalError("flash write failed: %s" % e)

    # the depot's side (journal/reader.py): loaded on first use, off the tap path
    def unsent(self, limit=50, max_bytes=4096):
        """A list of up to `limit` unsent records (seq, t, payload), oldest first.

        Payloads total at most max_bytes (but at least one record is returned)."""
        from journal import reader
        return reader.unsent(self, limit, max_bytes)

    def since(self, first):
        """Yield (seq, t, payload) of the records with seq >= first still on flash, oldest
        first: every unacked one, and acked ones as long as their sector has not been
        reused (status().first_seq is the oldest seq that is always there). For rebuilding
        state at boot (the app's write-ahead log); allocates per record; do not append
        while iterating."""
        from journal import reader
        return reader.since(self, first)

    def ack(self, upto_seq):
        """Acknowledge every record <= upto_seq (persisted when this returns).

        Re-acking is harmless; a seq never issued raises BadAck."""
        from journal import reader
        reader.ack(self, upto_seq)

    def maintain(self):
        """Bounded idle work: erase the sector after the head if it is free and not yet
        erased (at most one erase, ~45 ms). Returns True if it did something."""
        if not self._nd or self._ahead_ready:
            return False
        a = (self._head + 1) % self._nd
        if not self._free_sector(a):
            return False
        try:
            self._erase(a)
        except OSError as e:
            raise JournalError("flash erase failed: %s" % e)
        self._ahead_ready = True
        return True

    def status(self):
        self._check()
        st = JournalStatus()
        nd = self._nd
        live = (self._head - self._tail) % nd + 1
        room = SECTOR - self._wpos
        per = (SECTOR - SEC_HDR) // (TYPICAL_PAYLOAD + REC_OVERHEAD)
        st.count = self._next_seq - self._tail_base
        st.unsent = self._unsent()
        st.last_seq = self._next_seq - 1
        st.acked_seq = self._acks.acked
        st.first_seq = self._tail_base
        st.oldest_unsent_t = self._oldest_t
        st.last_t = self._last_t
        st.incarnation = self.incarnation
        st.free = (nd - live) * (SECTOR - SEC_HDR) + room
        st.free_records = (nd - live) * per + room // (TYPICAL_PAYLOAD + REC_OVERHEAD)
        st.capacity = nd * (SECTOR - SEC_HDR)
        st.full = st.free_records == 0
        st.nearly_full = st.full or st.free * 100 < st.capacity * self._pct
        st.formatted = self._formatted
        st.torn = self._torn
        st.lost = self._tail_base - self._acks.acked - 1 if self._tail_base > self._acks.acked + 1 else 0
        return st
