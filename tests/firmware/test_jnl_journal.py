# The journal (firmware/journal/) on the flash model: the contract of journal/__init__.py.
# mp-path: sim/vboard
# mp-heapsize: 512K  because the flash model holds the chip's contents (up to 32 KiB here)
#                    in RAM; on the board that is the flash chip, not heap
import gc

from flashdev import Flash, Partition, PowerCut
from journal import (BadAck, BadPartition, BadRecord, Journal, JournalError, JournalFull,
                     NotMounted)

T = 1750000000


def _rig(sectors=8):
    f = Flash(sectors * 4096)
    return f, Partition(f, 0, sectors * 4096, "journal")


def _p(i, n=50):
    return bytes([(i + k) & 0xFF for k in range(n)])


def test_construction_does_no_io_and_mount_formats_blank_flash():
    f, p = _rig()
    j = Journal(p)
    assert f.ops == 0 and f.read_ops == 0
    try:
        j.append(b"x", T)
        raise AssertionError("append before mount")
    except NotMounted:
        pass
    st = j.mount()
    assert st.formatted and st.unsent == 0 and st.count == 0 and st.last_seq == 0
    assert st.oldest_unsent_t is None and not st.full and not st.nearly_full
    assert st.capacity == 6 * (4096 - 20) and st.free == st.capacity
    assert st.incarnation != 0 and st.last_t == 0


def test_incarnation_kept_across_reboots_new_after_a_wipe_and_last_t():
    # docs/journal.md 'Incarnation': records are named by device + incarnation + seq
    f, p = _rig()
    j = Journal(p)
    inc = j.mount().incarnation
    for i in range(120):                                   # several sectors
        j.append(_p(i), T + i)
    j.ack(60)
    st = Journal(p).mount()
    assert st.incarnation == inc and st.last_t == T + 119 and not st.formatted
    # the head opened but empty (cut right after its header): last_t from the sector before
    j2 = Journal(p)
    j2.mount()
    j2._open((j2._head + 1) % j2._nd, j2._epoch + 1, j2._next_seq)
    st = Journal(p).mount()
    assert st.last_t == T + 119 and st.incarnation == inc and st.last_seq == 120
    # the journal wiped: seqs start again, under a new random incarnation
    for b in range(8):
        p.ioctl(6, b)
    st = Journal(p).mount()
    assert st.formatted and st.last_seq == 0 and st.incarnation not in (0, inc)
    # a sector header of format 1 (no incarnation) is not taken for a journal
    from journal import format as jf
    assert jf.parse_sector_header(b"BRJ\x01" + bytes(16)) is None


def test_append_unsent_ack_and_remount():
    f, p = _rig()
    j = Journal(p)
    j.mount()
    seqs = [j.append(_p(i), T + i) for i in range(30)]
    assert seqs == list(range(1, 31))
    b = j.unsent(10)
    assert [r[0] for r in b] == list(range(1, 11))
    assert b[3] == (4, T + 3, _p(3))
    assert len(j.unsent(100, max_bytes=120)) == 2          # 2 x 50 bytes, not 3
    assert len(j.unsent(100, max_bytes=10)) == 1           # but always one
    j.ack(10)
    st = j.status()
    assert st.unsent == 20 and st.acked_seq == 10 and st.oldest_unsent_t == T + 10
    j.ack(5)                                               # old ack: harmless no-op
    j2 = Journal(p)
    st = j2.mount()
    assert not st.formatted and st.unsent == 20 and st.last_seq == 30 and st.torn == 0
    assert j2.unsent(1)[0] == (11, T + 10, _p(10))
    assert j2.append(b"next", T) == 31
    j2.ack(31)
    assert j2.unsent() == [] and j2.status().oldest_unsent_t is None


def test_seqs_increase_across_wraps_acks_and_reboots():
    f, p = _rig(6)                                         # 4 data sectors
    j = Journal(p)
    j.mount()
    last = 0
    for _round in range(12):
        for i in range(40):
            s = j.append(_p(i, 30 + i), T + i)
            assert s == last + 1
            last = s
            j.maintain()
        got = j.unsent(1000, 100000)
        assert got[0][0] == j.status().acked_seq + 1 and got[-1][0] == last
        j.ack(last - 5)
        j = Journal(p)                                     # reboot
        st = j.mount()
        assert st.last_seq == last and st.unsent == 5 and st.lost == 0
        assert [r[0] for r in j.unsent(100)] == list(range(last - 4, last + 1))
    assert min(f.wear[2:]) >= 1 and max(f.wear) >= 2        # the ring went round


def test_full_journal_refuses_and_loses_nothing_then_recovers():
    f, p = _rig(5)                                         # 3 data sectors
    j = Journal(p)
    j.mount()
    n = 0
    try:
        while True:
            j.append(_p(n, 60), T + n)
            n += 1
            if n % 10 == 0:
                assert j.status().nearly_full == (j.status().free * 10 < j.status().capacity)
    except JournalFull as e:
        assert isinstance(e, JournalError)
    st = j.status()
    assert st.full and st.nearly_full and st.unsent == n and n >= 3 * 50
    for _ in range(3):                                     # keeps refusing, writes nothing
        ops = f.ops
        try:
            j.append(_p(0, 60), T)
            raise AssertionError("append to a full journal")
        except JournalFull:
            pass
        assert f.ops == ops
    j = Journal(p)
    assert j.mount().unsent == n                           # nothing dropped, after reboot too
    got = j.unsent(100000, 1000000)
    assert [r[2] for r in got] == [_p(i, 60) for i in range(n)]
    j.ack(60)                                              # the depot acks: ack works when full
    assert j.append(b"again", T) == n + 1
    assert not j.status().full


def test_maintain_pre_erases_so_appends_never_wait_for_an_erase():
    f, p = _rig(8)
    j = Journal(p)
    j.mount()
    worst = 0
    for i in range(600):
        if i % 50 == 0:
            j.ack(i)                                       # keep space free
        j.maintain()
        t0, e0 = f.time_us, f.erases
        j.append(_p(i, 60), T)
        assert f.erases == e0
        worst = max(worst, f.time_us - t0)
    assert worst < 25000
    # without maintain() the append that opens a sector pays the erase itself
    f2, p2 = _rig(8)
    j2 = Journal(p2)
    j2.mount()
    f2.program(4 * 4096, b"\x00")                          # make the next sectors dirty
    f2.program(5 * 4096, b"\x00")
    erased = 0
    for i in range(200):
        e0 = f2.erases
        j2.append(_p(i, 60), T)
        erased += f2.erases - e0
    assert erased >= 2


def test_bad_input_is_a_typed_error_and_writes_nothing():
    f, p = _rig()
    j = Journal(p)
    j.mount()
    j.append(b"ok", T)
    ops = f.ops
    for bad in (b"", bytes(241), "text", None, 5):
        try:
            j.append(bad, T)
            raise AssertionError("accepted %r" % (bad,))
        except BadRecord:
            pass
    for t in (-1, 1 << 32, 1.5, None):
        try:
            j.append(b"x", t)
            raise AssertionError("accepted t=%r" % (t,))
        except BadRecord:
            pass
    for a in (2, 100, "1"):
        try:
            j.ack(a)
            raise AssertionError("accepted ack %r" % (a,))
        except BadAck:
            pass
    assert f.ops == ops and j.status().unsent == 1
    assert j.append(bytes(240), T) == 2


def test_bad_partitions_are_refused():
    f = Flash(8 * 4096)
    for part in (Partition(f, 0, 4 * 4096), Partition(f, 0, 8 * 4096, block_size=8192)):
        try:
            Journal(part).mount()
            raise AssertionError("mounted a bad partition")
        except BadPartition:
            pass


def test_torn_append_is_dropped_and_the_sector_closed():
    f, p = _rig()
    j = Journal(p)
    j.mount()
    for i in range(5):
        j.append(_p(i), T)
    f.arm_cut(f.op_index, 11)
    try:
        j.append(_p(99, 200), T)                           # 213 bytes: crosses a page
        raise AssertionError("no cut")
    except PowerCut:
        pass
    f.power_on()
    j = Journal(Partition(f, 0, 8 * 4096))
    st = j.mount()
    assert st.last_seq in (5, 6) and st.lost == 0
    if st.last_seq == 5:
        assert st.torn == 1
    assert j.append(b"after", T) == st.last_seq + 1
    j = Journal(Partition(f, 0, 8 * 4096))
    assert j.mount().last_seq == st.last_seq + 1 and j.unsent(100)[-1][2] == b"after"


def test_garbage_partition_mounts_without_crash():
    f, p = _rig()
    x = 12345
    buf = bytearray(4096)
    for s in range(8):
        for k in range(4096):
            x = (x * 1103515245 + 12345) & 0x7FFFFFFF
            buf[k] = x >> 16 & 0xFF
        f.mem[s * 4096:(s + 1) * 4096] = buf
    j = Journal(p)
    st = j.mount()
    assert st.formatted and st.unsent == 0
    for i in range(200):
        j.append(_p(i), T)
    j = Journal(p)
    assert j.mount().unsent == 200


def test_append_allocates_little():
    f, p = _rig()
    j = Journal(p)
    j.mount()
    pl = _p(1, 60)
    j.append(pl, T)
    gc.collect()
    a0 = gc.mem_alloc()
    for _ in range(20):
        j.append(pl, T)
    per = (gc.mem_alloc() - a0) / 20
    print("bytes allocated per append: %d" % per)
    assert per < 400


def test_since_returns_records_still_on_flash_acked_or_not():
    f, p = _rig(6)                                         # 4 data sectors
    j = Journal(p)
    j.mount()
    for i in range(100):
        j.append(_p(i, 60), T + i)
    j.ack(100)                                             # everything acked ...
    for i in range(100, 110):
        j.append(_p(i, 60), T + i)
    st = j.status()
    assert st.first_seq > 1                                # the tail moved to the head
    got = list(j.since(1))                                 # ... but still on flash
    assert [g[0] for g in got] == list(range(1, 111))
    assert got[41] == (42, T + 41, _p(41, 60))
    assert [g[0] for g in j.since(95)] == list(range(95, 111))
    j = Journal(p)                                         # the same after a reboot
    j.mount()
    assert [g[0] for g in j.since(30)] == list(range(30, 111))
    for i in range(110, 300):                              # the ring wraps: old sectors reused
        j.append(_p(i, 60), T + i)
        j.maintain()
        if i % 40 == 0:
            j.ack(i - 20)
    st = j.status()
    got = [g[0] for g in j.since(1)]
    assert got[0] > 1 and got[0] <= st.first_seq and got == list(range(got[0], 301))
    assert [g[0] for g in j.since(st.first_seq)][0] == st.first_seq
    assert [g[2] for g in j.since(299)] == [_p(298, 60), _p(299, 60)]
