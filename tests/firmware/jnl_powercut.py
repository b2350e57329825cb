# Power-cut sweep of the journal and a LittleFS config rewrite, inside MicroPython.
#
# One deterministic workload (a bus day in miniature): ~300 tap appends with payloads of
# 40..119 bytes on a small journal (4 data sectors, so it fills up, refuses taps with
# JournalFull and wraps around its ring), acks in batches once the depot "arrives",
# maintain() between some taps, and a rewrite of /data/config.json with
# fsutil.write_atomic every 25 taps on a LittleFS (os.VfsLfs2) on the same chip.
# The power is cut during one flash operation (every one in turn, or seeded random ones,
# with the interrupted program/erase taking partial effect); then everything is rebuilt
# from the flash contents alone (fresh Flash power-on, fresh VfsLfs2 mount, fresh Journal)
# and checked:
#   - every append that returned (and was not acked) is present and intact;
#   - no record that was never appended: the only record beyond those returned may be the
#     one whose append was in flight, intact;
#   - seqs strictly increase, no duplicate; acknowledged records never come back;
#   - config.json is wholly the old or wholly the new version;
#   - the journal then takes new appends with larger seqs, and they survive a remount.
#
# storm(): the same workload run long, with the power cut again and again (a brown-out
# storm), verified after every boot and continued from there.
#
# Used by tests/firmware/test_jnl_powercut.py (a reduced set) and by `make powercut-full`:
#   micropython -X heapsize=1M tests/firmware/jnl_powercut.py full
import gc
import os
import sys

import flashdev
import fsutil
from journal import Journal, JournalFull

VFS_SIZE = 64 * 1024
JNL_SIZE = 6 * 4096     # 2 ack sectors + 4 data sectors
ATTEMPTS = 300
T0 = 1750000000
CFG = "/data/config.json"


def payload(i):
    n = 40 + (i * 37) % 80
    b = bytearray(n)
    for k in range(n):
        b[k] = (i * 7 + k * 13) & 0xFF
    b[0] = i & 0xFF
    b[1] = i >> 8
    return bytes(b)


def config(k):
    # a few hundred bytes, so a rewrite spans several LittleFS programs
    return (b'{"v": 1, "bus": "B-%03d", "pad": "' % k) + b"x" * (200 + k % 40 * 11) + b'"}'


class Track:
    def __init__(self):
        self.returned = []     # (seq, i) of every append that returned (acked ones pruned)
        self.last_ret = 0      # seq of the last append that returned
        self.inflight = -1     # i of the append in progress
        self.acked = 0         # last upto for which ack() returned
        self.ack_inflight = 0
        self.cfg = 0           # config version known written
        self.cfg_inflight = -1
        self.full = 0
        self.next_i = 0        # the next tap of the workload
        self.depot = False     # the journal was full once: acks from now on


class Rig:
    """The chip, its partitions and a snapshot of the state before the workload."""

    def __init__(self):
        self.flash = flashdev.Flash(VFS_SIZE + JNL_SIZE)
        self.parts = flashdev.partitions(self.flash, VFS_SIZE)
        os.VfsLfs2.mkfs(self.parts["vfs"])
        self.mount_vfs()
        fsutil.write_atomic(CFG, config(0))
        self.umount_vfs()
        self.snap = self.flash.snapshot()

    def power_on(self):
        # objects of the previous "boot" (vfs, open files) keep their now stale
        # partitions, which do nothing (see flashdev.Flash.power_on); new ones are made
        self.flash.power_on()
        gc.collect()
        self.parts = flashdev.partitions(self.flash, VFS_SIZE)

    def mount_vfs(self):
        os.mount(os.VfsLfs2(self.parts["vfs"]), "/data")

    def umount_vfs(self):
        try:
            os.umount("/data")
        except (OSError, flashdev.PowerCut):
            pass

    def reset(self):
        self.flash.restore(self.snap)
        self.power_on()
        self.flash.reset_counters()


def workload(rig, tr, stop=ATTEMPTS, j=None):
    if j is None:
        rig.mount_vfs()
        j = Journal(rig.parts["journal"])
        j.mount()
    while tr.next_i < stop:
        i = tr.next_i
        tr.next_i += 1
        tr.inflight = i
        try:
            seq = j.append(payload(i), T0 + i)
            tr.returned.append((seq, i))
            tr.last_ret = seq
        except JournalFull:
            tr.full += 1
            tr.depot = True
        tr.inflight = -1
        if tr.depot and i % 10 == 0:
            batch = j.unsent(20, 100000)
            if batch:
                tr.ack_inflight = batch[-1][0]
                j.ack(batch[-1][0])
                tr.acked = batch[-1][0]
        if i % 25 == 24:
            k = tr.cfg + 1
            tr.cfg_inflight = k
            fsutil.write_atomic(CFG, config(k))
            tr.cfg = k
            tr.cfg_inflight = -1
        if i % 3 == 0:
            j.maintain()
    rig.umount_vfs()


def count_ops():
    rig = Rig()
    rig.reset()
    tr = Track()
    workload(rig, tr)
    return rig, rig.flash.ops, tr


def verify(rig, tr):
    """Restart from the flash contents alone and check every promise.

    Returns (journal, status, largest seq seen); `tr` is brought up to date with what
    survived (an in-flight append or ack, a config version), so the workload can go on."""
    rig.umount_vfs()
    rig.power_on()
    rig.mount_vfs()
    got = fsutil.read_bytes(CFG)
    assert got == config(tr.cfg) or (tr.cfg_inflight >= 0 and got == config(tr.cfg_inflight)), \
        "config is neither the old nor the new version"
    if got != config(tr.cfg):
        tr.cfg = tr.cfg_inflight
    tr.cfg_inflight = -1
    j = Journal(rig.parts["journal"])
    st = j.mount()
    assert st.lost == 0, "lost %d" % st.lost
    assert st.acked_seq >= tr.acked, "an ack that returned was lost"
    assert st.acked_seq <= max(tr.acked, tr.ack_inflight)
    recs = j.unsent(100000, 1000000)
    assert len(recs) == st.unsent, (len(recs), st.unsent)
    by_seq = {}
    for seq, i in tr.returned:
        by_seq[seq] = i
    last_ret = tr.last_ret
    prev = st.acked_seq
    extra = 0
    for seq, t, p in recs:
        assert seq > prev, "seq not increasing (or an acked record came back)"
        prev = seq
        i = t - T0
        assert 0 <= i < tr.next_i and p == payload(i), "record %d is not an appended tap" % seq
        if seq in by_seq:
            assert by_seq[seq] == i, "seq %d holds tap %d, expected %d" % (seq, i, by_seq[seq])
        else:
            assert i == tr.inflight and seq > last_ret, "phantom record seq %d" % seq
            extra += 1
    assert extra <= 1
    present = {}
    for seq, _t, _p in recs:
        present[seq] = 1
    for seq, i in tr.returned:
        if seq > st.acked_seq:
            assert seq in present, "returned tap seq %d (i=%d) lost" % (seq, i)
    if extra:                    # the in-flight append survived: it is a tap from now on
        tr.returned.append((recs[-1][0], recs[-1][1] - T0))
        tr.last_ret = recs[-1][0]
    tr.inflight = -1
    tr.acked = st.acked_seq
    tr.returned = [r for r in tr.returned if r[0] > tr.acked]
    tr.ack_inflight = 0
    return j, st, (prev if prev > last_ret else last_ret)


def check(rig, tr):
    """verify(), then: the journal goes on with larger seqs, durable across a remount."""
    j, st, top = verify(rig, tr)
    more = []
    for k in range(3):
        try:
            more.append(j.append(b"after-cut-%d" % k, T0 + 10000 + k))
        except JournalFull:
            j.ack(j.status().last_seq)
            more.append(j.append(b"after-cut-%d" % k, T0 + 10000 + k))
    assert more[0] > top and more[1] == more[0] + 1 and more[2] == more[1] + 1
    j2 = Journal(rig.parts["journal"])
    st2 = j2.mount()
    want = [s for s in more if s > st2.acked_seq]
    tail = j2.unsent(100000, 1000000)[-len(want):] if want else []
    assert [r[0] for r in tail] == want, "appends after the recovery did not survive"
    for seq, _t, p in tail:
        assert p == b"after-cut-%d" % more.index(seq)
    assert st2.last_seq == more[2]
    rig.umount_vfs()
    return st.torn


def run_cut(rig, op, seed):
    """Run the workload with the power cut at `op`; check; True if the cut happened."""
    rig.reset()
    rig.flash.arm_cut(op, seed)
    tr = Track()
    cut = False
    try:
        workload(rig, tr)
    except flashdev.PowerCut:
        cut = True
    check(rig, tr)
    return cut


def sweep(every=1, randoms=0, seed0=1, log=print):
    """Cut at every `every`-th operation, then at `randoms` seeded random operations."""
    rig, total, tr = count_ops()
    assert tr.full > 0, "the workload never filled the journal"
    log("workload: %d flash operations, %d taps returned, %d refused as full"
        % (total, len(tr.returned), tr.full))
    cuts = 0
    for op in range(0, total, every):
        assert run_cut(rig, op, seed0 + op), "no cut at op %d" % op
        cuts += 1
    for k in range(randoms):
        s = seed0 * 7919 + k
        rig.reset()
        op = rig.flash.arm_random_cut(s, 0, total)
        tr2 = Track()
        try:
            workload(rig, tr2)
            raise AssertionError("random cut at op %d did not happen" % op)
        except flashdev.PowerCut:
            pass
        check(rig, tr2)
        cuts += 1
    log("power cuts checked: %d (every %d of %d ops + %d seeded random), 0 lost, 0 phantom, "
        "0 duplicated" % (cuts, every, total, randoms))
    return cuts


def storm(cuts, seed=1, stop=3000, log=print):
    """Brown-out storm: one long workload, the power cut again and again at seeded random
    points (often within a few operations of the previous boot, so cuts land in recovery
    follow-ups: re-erases, sector opens, first appends), verified after every boot."""
    rig = Rig()
    rig.reset()
    tr = Track()
    rng = seed * 2654435761 & 0xFFFFFFFF or 1
    done = 0
    j = None
    while done < cuts and tr.next_i < stop:
        rng ^= (rng << 13) & 0xFFFFFFFF
        rng ^= rng >> 17
        rng ^= (rng << 5) & 0xFFFFFFFF
        span = 1 + rng % (8 if rng & 0x300 == 0 else 200)
        rig.flash.arm_cut(rig.flash.op_index + span, rng)
        try:
            workload(rig, tr, stop, j)
        except flashdev.PowerCut:
            done += 1
        j, _st, _top = verify(rig, tr)
    log("brown-out storm: %d cuts over %d taps (last seq %d, acked %d), 0 lost, 0 phantom, "
        "0 duplicated" % (done, tr.next_i, tr.last_ret, tr.acked))
    return done


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "full":
        sweep(every=1, randoms=2000)
        storm(1000, seed=11, stop=60000)
    else:
        sweep(every=5, randoms=100)
