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

from .acks import AckStore
from .errors import BadAck, BadPartition, BadRecord, JournalError, JournalFull, NotMounted
from .format import (ACK_SECTORS, MAX_PAYLOAD, REC_HDR, REC_OVERHEAD, SEC_HDR, SECTOR, U32,
                     blank, pack_record, pack_sector_header, parse_sector_header, record_ok)

TYPICAL_PAYLOAD = const(60)  # for status().free_records: a CBOR tap record is ~40-60 bytes
_BUF = const(256)


class JournalStatus:
    """What status()/mount() report. Counts are records; free/capacity are bytes."""

    def __init__(self):
        self.count = 0             # records held on flash (unsent + acked not yet reused)
        self.unsent = 0            # records not yet acknowledged by the depot
        self.last_seq = 0          # seq of the newest record (0: none yet)
        self.acked_seq = 0         # everything <= this is acknowledged
        self.first_seq = 1         # oldest seq since() always returns (unacked are after it)
        self.oldest_unsent_t = None  # t of the oldest unsent record, None if none
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
        self._buf = bytearray(_BUF)
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
        self._formatted = False
        self._torn = 0

    # -- flash access --------------------------------------------------------------
    def _read(self, sector, off, n):
        self._part.readblocks(ACK_SECTORS + sector, self._mv[0:n] if n < _BUF else self._buf,
                              off)

    def _header(self, sector):
        self._read(sector, 0, SEC_HDR)
        return parse_sector_header(self._buf)

    def _blank_from(self, sector, off):
        while off < SECTOR:
            n = SECTOR - off if SECTOR - off < _BUF else _BUF
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
        pack_sector_header(self._buf, epoch, base)
        self._part.writeblocks(ACK_SECTORS + sector, self._mv[0:SEC_HDR], 0)
        self._head, self._epoch, self._wpos = sector, epoch, SEC_HDR
        self._ahead_ready = False

    # -- boot ----------------------------------------------------------------------
    def mount(self):
        """Recover the journal from flash (formatting a blank one); returns status()."""
        if self._part.ioctl(5, 0) != SECTOR:
            raise BadPartition("journal needs 4096-byte blocks")
        nd = self._part.ioctl(4, 0) - ACK_SECTORS
        if nd < 3:
            raise BadPartition("journal partition too small")
        self._nd = 0
        self._acks.load()
        acked = self._acks.acked
        self._torn = self._acks.torn
        # one pass over the sector headers for the head; the tail walk reads the few it
        # needs again (a table of them would be a 3 KB block to find on a cut-up heap)
        head, hepoch, hbase = -1, 0, 0
        for s in range(nd):
            h = self._header(s)
            if h is not None:
                if head < 0 or h[0] > hepoch:
                    head, hepoch, hbase = s, h[0], h[1]
        self._formatted = head < 0
        self._ahead_ready = False
        if head < 0:
            self._next_seq = acked + 1
            self._open(0, 1, acked + 1)
            self._tail, self._tail_base = 0, acked + 1
        else:
            self._head, self._epoch = head, hepoch
            self._scan_head(hbase)
            if self._next_seq <= acked:  # acks beyond the log (never expected): keep seqs new
                self._next_seq, self._wpos = acked + 1, SECTOR
            self._tail, self._tail_base = head, hbase
            self._walk_tail(nd, acked)
        self._nd = nd
        a = (self._head + 1) % nd
        if self._free_sector(a):
            self._ahead_ready = self._blank_from(a, 0)
        self._oldest_t = self._find_t(self._first_unsent()) if self._unsent() else None
        return self.status()

    def _scan_head(self, base):
        pos, seq = SEC_HDR, base
        s = self._head
        while pos + REC_OVERHEAD < SECTOR:
            n = SECTOR - pos if SECTOR - pos < _BUF else _BUF
            self._read(s, pos, n)
            if self._buf[0] == 0xFF:
                break
            k = record_ok(self._buf, n, seq)
            if not k:
                break
            pos += k
            seq += 1
        self._next_seq = seq
        if self._blank_from(s, pos):
            self._wpos = pos
        else:  # a torn record: close the sector, appends continue in the next one
            self._wpos = SECTOR
            self._torn += 1

    def _walk_tail(self, nd, acked):
        cur, base, epoch = self._head, self._tail_base, self._epoch
        for _ in range(nd - 1):
            if base - 1 <= acked:  # everything before `cur` is acknowledged
                break
            p = (cur - 1) % nd
            h = self._header(p)
            if h is None:
                break
            pe, pb = h
            if pe != epoch - 1 or pb > base:
                break
            cur, epoch, base = p, pe, pb
        self._tail, self._tail_base = cur, base

    def _free_sector(self, s):
        # free = not between tail and head (the ring's live part)
        return (s - self._tail) % self._nd > (self._head - self._tail) % self._nd

    def _first_unsent(self):
        a = self._acks.acked + 1
        return a if a > self._tail_base else self._tail_base

    def _unsent(self):
        return self._next_seq - self._first_unsent()

    # -- records -------------------------------------------------------------------
    def _records(self, first, start=-1):
        """Yield (seq, payload length) of each valid record with seq >= first, in order,
        from sector `start` (default: the tail) to the head.

        The record itself is in self._buf when yielded (valid until the next step)."""
        s = self._tail if start < 0 else start
        while True:
            h = self._header(s)
            if h is not None:
                pos, seq = SEC_HDR, h[1]
                end = self._wpos if s == self._head else SECTOR
                while pos + REC_OVERHEAD < end and seq < self._next_seq:
                    n = end - pos if end - pos < _BUF else _BUF
                    self._read(s, pos, n)
                    k = record_ok(self._buf, n, seq)
                    if not k:
                        break  # erased or torn: this sector ends here
                    if seq >= first:
                        yield seq, k - REC_OVERHEAD
                    pos += k
                    seq += 1
            if s == self._head:
                return
            s = (s + 1) % self._nd

    def _find_t(self, seq):
        for _seq, _n in self._records(seq):
            return int.from_bytes(self._buf[5:9], "little")
        return None

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

    def unsent(self, limit=50, max_bytes=4096):
        """A list of up to `limit` unsent records (seq, t, payload), oldest first.

        Payloads total at most max_bytes (but at least one record is returned)."""
        self._check()
        out = []  # type: list
        total = 0
        for seq, n in self._records(self._first_unsent()):
            if len(out) >= limit or (out and total + n > max_bytes):
                break
            t = int.from_bytes(self._buf[5:9], "little")
            out.append((seq, t, bytes(self._mv[REC_HDR:REC_HDR + n])))
            total += n
        return out

    def since(self, first):
        """Yield (seq, t, payload) of the records with seq >= first still on flash, oldest
        first: every unacked one, and acked ones as long as their sector has not been
        reused (status().first_seq is the oldest seq that is always there). For rebuilding
        state at boot (the app's write-ahead log); allocates per record; do not append
        while iterating."""
        self._check()
        s, base = self._tail, self._tail_base
        h = self._header(s)
        epoch = h[0] if h is not None else 0
        for _ in range(self._nd - 1):  # walk back into acked sectors not yet reused
            if base <= first:
                break
            p = (s - 1) % self._nd
            if p == self._head:
                break
            h = self._header(p)
            if h is None or h[0] != epoch - 1 or h[1] >= base:
                break
            s, base, epoch = p, h[1], h[0]
        for seq, n in self._records(first, s):
            t = int.from_bytes(self._buf[5:9], "little")
            yield seq, t, bytes(self._mv[REC_HDR:REC_HDR + n])

    def ack(self, upto_seq):
        """Acknowledge every record <= upto_seq (persisted when this returns).

        Re-acking is harmless; a seq never issued raises BadAck."""
        self._check()
        if not isinstance(upto_seq, int):
            raise BadAck("ack needs an int")
        if upto_seq <= self._acks.acked:
            return
        if upto_seq >= self._next_seq:
            raise BadAck("ack %d beyond last seq %d" % (upto_seq, self._next_seq - 1))
        try:
            self._acks.write(upto_seq)
        except OSError as e:
            raise JournalError("flash write failed: %s" % e)
        while self._tail != self._head:
            h = self._header((self._tail + 1) % self._nd)
            if h is None or h[1] - 1 > upto_seq:
                break
            self._tail, self._tail_base = (self._tail + 1) % self._nd, h[1]
        self._oldest_t = self._find_t(self._first_unsent()) if self._unsent() else None

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
        st.free = (nd - live) * (SECTOR - SEC_HDR) + room
        st.free_records = (nd - live) * per + room // (TYPICAL_PAYLOAD + REC_OVERHEAD)
        st.capacity = nd * (SECTOR - SEC_HDR)
        st.full = st.free_records == 0
        st.nearly_full = st.full or st.free * 100 < st.capacity * self._pct
        st.formatted = self._formatted
        st.torn = self._torn
        st.lost = self._tail_base - self._acks.acked - 1 if self._tail_base > self._acks.acked + 1 else 0
        return st
