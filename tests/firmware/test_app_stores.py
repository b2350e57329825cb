# The validator's pure parts under MicroPython: fares, deny list (100,000 entries, by
# seeking), recent taps (replay + anti-passback), offline allowance.
# mp-timeout: 300  because the 100,000-entry deny list is generated here (~1 s)
import os
import time

from app import allowance, denylist, fares, recent

TMP = "/tmp/brt_app_stores_%d" % time.time_ns()
try:
    os.mkdir(TMP)
except OSError:
    pass


def _deny_file(path, keys_between, n_filler=100000, version=7):
    # filler entries i*K (sorted), with the given real keys merged in sorted position
    step = (1 << 64) // (n_filler + 1)
    extra = sorted(keys_between)
    n = n_filler + len(extra)
    with open(path, "wb") as f:
        f.write(b"BRTB\x01\x02" + version.to_bytes(4, "big") + bytes(4) + (8 * n).to_bytes(4, "big"))
        j = 0
        for i in range(1, n_filler + 1):
            e = (i * step).to_bytes(8, "big")
            while j < len(extra) and extra[j] < e:
                f.write(extra[j])
                j += 1
            f.write(e)
        while j < len(extra):
            f.write(extra[j])
            j += 1
        f.write(bytes(64))  # signature: checked at install, not at lookup
    return step


def test_fares_from_body_and_rupiah():
    t = fares.FareTable.from_body({"cur": "IDR", "fares": {0: 3500, 1: 1000, 4: 1000}}, 3)
    assert t.fare(0) == 3500 and t.fare(1) == 1000 and t.fare(5) is None
    assert t.version == 3
    assert fares.rupiah(3500) == "Rp 3.500"
    assert fares.rupiah(1000) == "Rp 1.000"
    assert fares.rupiah(0) == "Rp 0"
    assert fares.rupiah(1234567) == "Rp 1.234.567"


def test_fares_refuse_bad_bodies():
    bad = [[], {"cur": "USD", "fares": {0: 1}}, {"cur": "IDR"}, {"cur": "IDR", "fares": {}},
           {"cur": "IDR", "fares": {"0": 3500}}, {"cur": "IDR", "fares": {0: -1}},
           {"cur": "IDR", "fares": {0: True}}, {"cur": "IDR", "fares": {99: 1}},
           {"cur": "IDR", "fares": {0: 3500, 6: 1000}},   # categories are 0..5
           {"cur": "IDR", "fares": {0: 1}, "x": 1}]
    for b in bad:
        try:
            fares.FareTable.from_body(b, 1)
        except fares.FareError:
            continue
        raise AssertionError("accepted %r" % (b,))


def test_deny_list_100000_entries_by_seeking():
    import gc
    w = b"wallet-revoked"
    p = b"pass-revoked-01"
    kw, kp = denylist.key(b"W", w), denylist.key(b"P", p)
    path = TMP + "/deny.bin"
    step = _deny_file(path, [kw, kp])
    gc.collect()
    before = gc.mem_alloc()
    d = denylist.DenyList.open(path)
    assert d.count == 100002 and d.version == 7
    assert d.contains(kw) and d.contains(kp)
    assert d.denies(kw, denylist.key(b"P", b"other pass"))
    assert d.denies(denylist.key(b"W", b"someone"), denylist.key(b"P", p))
    assert not d.denies(denylist.key(b"W", b"someone"), denylist.key(b"P", b"other pass"))
    # first, last, middle filler entries; neighbours of them are not listed
    for i in (1, 50000, 100000):
        assert d.contains((i * step).to_bytes(8, "big"))
        assert not d.contains((i * step + 1).to_bytes(8, "big"))
    assert not d.contains(bytes(8)) and not d.contains(b"\xff" * 8)
    gc.collect()
    # the 800 KB file is not in RAM: the open list costs a few hundred bytes
    assert gc.mem_alloc() - before < 2000, gc.mem_alloc() - before
    d.close()
    os.remove(path)


def test_deny_list_missing_is_empty_and_bad_files_are_refused():
    d = denylist.DenyList.open(TMP + "/nonexistent.bin")
    assert d.count == 0 and not d.denies(bytes(8), denylist.key(b"P", b"p"))
    good_hdr = b"BRTB\x01\x02" + bytes(8) + (16).to_bytes(4, "big")
    cases = [b"", b"BRTB", b"XXXX\x01\x02" + bytes(12) + bytes(64),
             b"BRTB\x01\x03" + bytes(8) + (16).to_bytes(4, "big") + bytes(16 + 64),
             b"BRTB\x01\x02" + bytes(8) + (12).to_bytes(4, "big") + bytes(12 + 64),
             good_hdr + bytes(16 + 63)]
    for i, c in enumerate(cases):
        path = TMP + "/bad%d.bin" % i
        with open(path, "wb") as f:
            f.write(c)
        try:
            denylist.DenyList.open(path)
        except denylist.DenyListError:
            os.remove(path)
            continue
        raise AssertionError("accepted bad deny file %d" % i)


def _pid(n):
    return bytes([n & 255]) * 16


def test_recent_replay_and_passback_checkpoint():
    path = TMP + "/replay.bin"
    try:
        os.remove(path)
    except OSError:
        pass
    r = recent.RecentTaps(path, capacity=8).open()
    assert r.upto_seq == 0 and not r.dirty
    now = 1800000000
    w1, w2 = b"W1______", b"W2______"
    assert not r.seen_proof(_pid(1))
    i = r.free_slot(now, 90)
    r.put(i, _pid(1), w1, now, True)
    assert r.dirty
    j = r.free_slot(now, 90)
    assert j != i
    r.put(j, _pid(2), w2, now, False)   # seen, but not paid (e.g. already-paid answer)
    assert r.seen_proof(_pid(1)) and r.seen_proof(_pid(2)) and not r.seen_proof(_pid(3))
    assert r.paid_within(w1, now + 59, 60)
    assert not r.paid_within(w1, now + 60, 60)
    assert not r.paid_within(w2, now + 1, 60)
    assert not r.paid_within(w1, now + 1, 0)
    # nothing reaches the flash until a checkpoint: a reboot now finds an empty ring
    r2 = recent.RecentTaps(path, capacity=8).open()
    assert not r2.seen_proof(_pid(1)) and r2.upto_seq == 0
    r.save(17)
    assert not r.dirty and r.upto_seq == 17
    r3 = recent.RecentTaps(path, capacity=8).open()   # after a reboot
    assert r3.upto_seq == 17
    assert r3.seen_proof(_pid(1)) and r3.paid_within(w1, now + 10, 60)
    r3.clear(i)
    assert not r3.seen_proof(_pid(1)) and r3.seen_proof(_pid(2))
    # a torn or foreign file is an empty ring, not a crash
    with open(path, "wb") as f:
        f.write(b"RCT1\x00\x00")
    r4 = recent.RecentTaps(path, capacity=8).open()
    assert r4.upto_seq == 0 and not r4.seen_proof(_pid(2))


def test_recent_full_of_live_proofs_is_busy_then_reuses_oldest():
    r = recent.RecentTaps(TMP + "/replay2.bin", capacity=4).open()
    now = 1800000000
    for k in range(4):
        i = r.free_slot(now + k, 90)
        assert i >= 0
        r.put(i, _pid(10 + k), b"w%07d" % k, now + k, True)
    assert r.free_slot(now + 10, 90) == -1          # every proof could still be fresh
    i = r.free_slot(now + 90, 90)                    # the first is now too old to replay
    assert i >= 0
    r.put(i, _pid(20), b"wnew____", now + 90, True)
    assert not r.seen_proof(_pid(10)) and r.seen_proof(_pid(11)) and r.seen_proof(_pid(20))


def test_recent_wallet_with_many_slots_is_found():
    r = recent.RecentTaps(TMP + "/replay3.bin", capacity=6).open()
    now = 1800000000
    w = b"WWWWWWWW"
    r.put(0, _pid(1), w, now - 500, True)    # an old paid tap
    r.put(3, _pid(2), w, now - 5, True)      # a recent one further on
    assert r.paid_within(w, now, 60)


def _rmtree(path):
    try:
        for name in os.listdir(path):
            os.remove(path + "/" + name)
        os.rmdir(path)
    except OSError:
        pass


def test_allowance_sums_pending_flush_and_reuse():
    path = TMP + "/allow"
    _rmtree(path)
    a = allowance.AllowanceStore(path, buckets=2, per_bucket=8).open()
    now = 1800000000
    exp = now + 86400
    k1 = denylist.key(b"P", b"pass-1")
    assert a.spent(k1, now) == 0
    a.add(k1, 3500, exp, 5)
    a.add(k1, 3500, exp, 9)
    assert a.spent(k1, now) == 7000 and a.find(k1, now)[1] == 0   # RAM only so far
    assert a.flush_one(now) and not a.flush_one(now)
    slot, spent, seq = a.find(k1, now)
    assert (spent, seq) == (7000, 9)
    a = allowance.AllowanceStore(path, buckets=2, per_bucket=8).open()   # after a reboot
    assert a.spent(k1, now) == 7000
    # a tap replayed from the journal that the slot already counted is not counted again
    a.add(k1, 3500, exp, 9)
    a.flush_one(now)
    assert a.spent(k1, now) == 7000
    a.add(k1, 1000, exp, 12)
    a.flush_one(now)
    assert a.find(k1, now)[1:] == (8000, 12)
    # fill the bucket with passes that collide on the same home slot
    b0, h0 = k1[0], k1[1]
    others = [bytes([b0, h0]) + bytes([s + 1]) * 6 for s in range(7)]
    for kk in others:
        sl, c, _ = a.find(kk, now)
        assert c == 0 and sl[0] == slot[0]
        a.write(sl, kk, 1, now + 10, 1)
    try:
        a.find(bytes([b0, h0]) + b"zzzzzz", now)
        raise AssertionError("full bucket gave a slot")
    except allowance.AllowanceError:
        pass
    # once those passes expired their slots are free again; the live sum is kept
    sl, c, _ = a.find(bytes([b0, h0]) + b"zzzzzz", now + 11)
    assert c == 0 and sl != slot
    assert a.find(k1, now + 11)[:2] == (slot, 8000)
    # several pending sums of one bucket go to flash in one write
    k2, k3 = others[0], others[1]
    a.add(k2, 100, now + 99, 20)
    a.add(k3, 200, now + 99, 21)
    assert a.flush_one(now) and a.npending == 0
    assert a.find(k2, now)[1:] == (101, 20) and a.find(k3, now)[1:] == (201, 21)
    # a torn bucket file (wrong size) reads as empty, never as garbage sums
    with open(path + "/%02d.bin" % slot[0], "wb") as f:
        f.write(b"\xff" * 10)
    a = allowance.AllowanceStore(path, buckets=2, per_bucket=8).open()
    assert a.spent(k1, now) == 0
    _rmtree(path)


def test_allowance_pending_table_full_flushes_a_bucket_and_keeps_every_sum():
    path = TMP + "/allow_full"
    _rmtree(path)
    a = allowance.AllowanceStore(path).open()          # the real sizes: 32 buckets of 64
    now = 1800000000
    keys = [denylist.key(b"P", b"burst-%d" % i) for i in range(allowance.MAX_PENDING + 9)]
    # a burst of riders with no idle moment: the table fills, then each new pass flushes
    # one bucket on its own tap; nothing allocated per pass, no sum lost
    for n, k in enumerate(keys):
        a.add(k, 1000 + n, now + 86400, n + 1, now)
        a.add(k, 1, now + 86400, n + 1, now)            # same pass again: same slot
        assert a.npending <= allowance.MAX_PENDING
    assert a.full() or a.npending < allowance.MAX_PENDING
    for n, k in enumerate(keys):
        assert a.spent(k, now) == 1000 + n + 1, n
    while a.flush_one(now):
        pass
    assert a.npending == 0 and a.lost_sums == 0
    b = allowance.AllowanceStore(path).open()          # after a reboot: all on flash
    for n, k in enumerate(keys):
        assert b.spent(k, now) == 1000 + n + 1, n
    _rmtree(path)


def test_zz_cleanup():
    _rmtree(TMP)
