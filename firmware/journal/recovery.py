# Journal recovery at boot (Journal.mount): find the head, the write position and the
# tail from flash alone. Boot-only, so it lives apart from journal/log.py and is released
# after the mount (unload.forget): taps do not carry it in heap. Works on the Journal's
# private state, as the methods it was split from did.
from .errors import BadPartition
from .format import ACK_SECTORS, REC_OVERHEAD, RW_BUF, SEC_HDR, SECTOR, record_ok


def mount(j):
    """Recover the journal from flash, formatting a blank one (Journal.mount)."""
    if j._part.ioctl(5, 0) != SECTOR:
        raise BadPartition("journal needs 4096-byte blocks")
    nd = j._part.ioctl(4, 0) - ACK_SECTORS
    if nd < 3:
        raise BadPartition("journal partition too small")
    j._nd = 0
    j._acks.load()
    acked = j._acks.acked
    j._torn = j._acks.torn
    # one pass over the sector headers for the head; the tail walk reads the few it
    # needs again (a table of them would be a 3 KB block to find on a cut-up heap)
    head, hepoch, hbase, hinc = -1, 0, 0, 0
    for s in range(nd):
        h = j._header(s)
        if h is not None:
            if head < 0 or h[0] > hepoch:
                head, hepoch, hbase, hinc = s, h[0], h[1], h[2]
    j._formatted = head < 0
    j._ahead_ready = False
    j._last_t = 0
    if head < 0:
        # a new incarnation: the depot and the back office key records on device +
        # incarnation + seq, so seqs that start again here are never taken for old ones
        j.incarnation = _new_incarnation()
        j._next_seq = acked + 1
        j._open(0, 1, acked + 1)
        j._tail, j._tail_base = 0, acked + 1
    else:
        j._head, j._epoch, j.incarnation = head, hepoch, hinc
        _scan_head(j, hbase)
        if j._next_seq <= acked:  # acks beyond the log (never expected): keep seqs new
            j._next_seq, j._wpos = acked + 1, SECTOR
        j._tail, j._tail_base = head, hbase
        _walk_tail(j, nd, acked)
    j._nd = nd
    if not j._last_t and j._next_seq > 1:
        _last_t_before(j, nd)
    a = (j._head + 1) % nd
    if j._free_sector(a):
        j._ahead_ready = j._blank_from(a, 0)
    j._oldest_t = None
    if j._unsent():
        from journal import reader
        j._oldest_t = reader.find_t(j, j._first_unsent())


def _scan_head(j, base):
    pos, seq = SEC_HDR, base
    s = j._head
    while pos + REC_OVERHEAD < SECTOR:
        n = SECTOR - pos if SECTOR - pos < RW_BUF else RW_BUF
        j._read(s, pos, n)
        if j._buf[0] == 0xFF:
            break
        k = record_ok(j._buf, n, seq)
        if not k:
            break
        j._last_t = int.from_bytes(j._buf[5:9], "little")
        pos += k
        seq += 1
    j._next_seq = seq
    if j._blank_from(s, pos):
        j._wpos = pos
    else:  # a torn record: close the sector, appends continue in the next one
        j._wpos = SECTOR
        j._torn += 1


def _walk_tail(j, nd, acked):
    cur, base, epoch = j._head, j._tail_base, j._epoch
    for _ in range(nd - 1):
        if base - 1 <= acked:  # everything before `cur` is acknowledged
            break
        p = (cur - 1) % nd
        h = j._header(p)
        if h is None:
            break
        pe, pb, pi = h
        if pe != epoch - 1 or pb > base or pi != j.incarnation:
            break
        cur, epoch, base = p, pe, pb
    j._tail, j._tail_base = cur, base


def _new_incarnation():
    import os
    v = int.from_bytes(os.urandom(4), "big")
    return v if v else 1


def _last_t_before(j, nd):
    # the head holds no record yet (cut right after it was opened): the newest record is
    # the last one of the sector before, if that sector is still on flash
    p = (j._head - 1) % nd
    h = j._header(p)
    if h is None or h[0] != j._epoch - 1 or h[2] != j.incarnation:
        return
    from journal import reader
    for _seq, _n in reader.records(j, h[1], p):
        j._last_t = int.from_bytes(j._buf[5:9], "little")
        if _seq >= j._next_seq - 1:
            break
