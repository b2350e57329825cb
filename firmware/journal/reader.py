# Reading the journal back and acknowledging it (Journal.unsent / since / ack): the depot's
# side, and boot's when there are unsent taps. Apart from journal/log.py so the tap path
# does not carry it in heap; loaded on first use. Works on the Journal's private state, as
# the methods it was split from did.
from .errors import BadAck, JournalError
from .format import REC_HDR, REC_OVERHEAD, RW_BUF, SEC_HDR, SECTOR, record_ok


def records(j, first, start=-1):
    """Yield (seq, payload length) of each valid record with seq >= first, in order,
    from sector `start` (default: the tail) to the head.

    The record itself is in j._buf when yielded (valid until the next step)."""
    s = j._tail if start < 0 else start
    while True:
        h = j._header(s)
        if h is not None:
            pos, seq = SEC_HDR, h[1]
            end = j._wpos if s == j._head else SECTOR
            while pos + REC_OVERHEAD < end and seq < j._next_seq:
                n = end - pos if end - pos < RW_BUF else RW_BUF
                j._read(s, pos, n)
                k = record_ok(j._buf, n, seq)
                if not k:
                    break  # erased or torn: this sector ends here
                if seq >= first:
                    yield seq, k - REC_OVERHEAD
                pos += k
                seq += 1
        if s == j._head:
            return
        s = (s + 1) % j._nd


def find_t(j, seq):
    for _seq, _n in records(j, seq):
        return int.from_bytes(j._buf[5:9], "little")
    return None


def unsent(j, limit=50, max_bytes=4096):
    """A list of up to `limit` unsent records (seq, t, payload), oldest first.

    Payloads total at most max_bytes (but at least one record is returned)."""
    j._check()
    out = []  # type: list
    total = 0
    for seq, n in records(j, j._first_unsent()):
        if len(out) >= limit or (out and total + n > max_bytes):
            break
        t = int.from_bytes(j._buf[5:9], "little")
        out.append((seq, t, bytes(j._mv[REC_HDR:REC_HDR + n])))
        total += n
    return out


def since(j, first):
    """Yield (seq, t, payload) of the records with seq >= first still on flash, oldest
    first: every unacked one, and acked ones as long as their sector has not been
    reused (status().first_seq is the oldest seq that is always there). For rebuilding
    state at boot (the app's write-ahead log); allocates per record; do not append
    while iterating."""
    j._check()
    s, base = j._tail, j._tail_base
    h = j._header(s)
    epoch = h[0] if h is not None else 0
    for _ in range(j._nd - 1):  # walk back into acked sectors not yet reused
        if base <= first:
            break
        p = (s - 1) % j._nd
        if p == j._head:
            break
        h = j._header(p)
        if h is None or h[0] != epoch - 1 or h[1] >= base or h[2] != j.incarnation:
            break
        s, base, epoch = p, h[1], h[0]
    for seq, n in records(j, first, s):
        t = int.from_bytes(j._buf[5:9], "little")
        yield seq, t, bytes(j._mv[REC_HDR:REC_HDR + n])


def ack(j, upto_seq):
    """Acknowledge every record <= upto_seq (persisted when this returns).

    Re-acking is harmless; a seq never issued raises BadAck."""
    j._check()
    if not isinstance(upto_seq, int):
        raise BadAck("ack needs an int")
    if upto_seq <= j._acks.acked:
        return
    if upto_seq >= j._next_seq:
        raise BadAck("ack %d beyond last seq %d" % (upto_seq, j._next_seq - 1))
    try:
        j._acks.write(upto_seq)
    except OSError as e:
        raise JournalError("flash write failed: %s" % e)
    while j._tail != j._head:
        h = j._header((j._tail + 1) % j._nd)
        if h is None or h[1] - 1 > upto_seq:
            break
        j._tail, j._tail_base = (j._tail + 1) % j._nd, h[1]
    j._oldest_t = find_t(j, j._first_unsent()) if j._unsent() else None
