# A validator's sync side under MicroPython (128 KB heap, firmware as .mpy files: see
# tests/host/sync_support.py), driven line by line by the CPython tests
# (tests/support/mp.MPWorker): the real journal on the flash model (file-backed, so it
# survives a restart of this process like flash survives a power cut), the real tap
# record encoder, bundles installed under a data dir, and firmware/sync's SyncClient
# talking HTTP to the depot on loopback. One JSON request per line, one JSON answer.
#
# Requests:  {"op": "init", "flash": path, "data": dir, "url": u, "device": id,
#             "secret": hex, "opkey": hex, "batch": n, "fresh": bool}
#            {"op": "tap", "recs": [[wallet_hex, pass_hex, proof_hex, fare, answer], ...]}
#            {"op": "sync", "max_ms": ms, "tap_every": k, "stop_on_fail": bool,
#             "allow_slow_every": k}
#            {"op": "status"}
from tokens import p256  # noqa: F401, I001 - first, as the app loads it at boot
import array
import binascii
import os
import time

import esp32
import flashdev
from app.record import RecordWriter
from journal import Journal
from sync import SyncClient
from mp_serve import serve

H = binascii.unhexlify
S = None  # session state
_HIST = array.array("I", bytes(2000))  # step-time histogram, 0.1 ms buckets


class Session:
    def __init__(self, req):
        import gc
        gc.collect()
        self.flash = flashdev.Flash(req.get("flash_size", 128 * 1024), req["flash"])
        esp32.attach(self.flash, 32 * 1024)
        self.journal = Journal(esp32.Partition("journal"))
        self.journal.mount()
        self.rw = RecordWriter()
        self.times = []
        self.client = SyncClient(req["url"], req["device"], H(req["secret"]), self.journal,
                                 H(req["opkey"]), data_dir=req["data"],
                                 on_time=self.times.append,
                                 batch_records=req.get("batch", 24),
                                 timeout_ms=req.get("timeout_ms", 8000))
        self.tapped = []  # seqs appended while syncing

    def tap(self, rec, t):
        wallet, pid, proof, fare, answer = rec
        payload = self.rw.encode(t, 0, 2, answer, 0 if answer == 0 else 41, H(wallet),
                                 H(pid), 0, fare, H(proof), 1)
        return self.journal.append(bytes(payload), t)


def op_init(req):
    global S
    if req.get("fresh"):
        try:
            os.remove(req["flash"])
        except OSError:
            pass
    S = Session(req)
    st = S.journal.status()
    return {"unsent": st.unsent, "last_seq": st.last_seq}


def op_tap(req):
    seqs = [S.tap(rec, 1760000000 + i) for i, rec in enumerate(req["recs"])]
    return {"seqs": seqs}


def gen_rec(i, base):
    """Deterministic tap i (tests/host/sync_harness.gen_rec computes the same on the host)."""
    k = base + i
    ok = k % 10 != 9
    return ["%08x" % (k % 37), "%08x" % (k % 37), "%032x" % k, 3500 if ok else 0,
            0 if ok else 1]


def op_gen(req):
    """Append n generated taps (for big runs: no per-tap JSON over the pipe)."""
    base = req.get("base", 0)
    last = 0
    for i in range(req["n"]):
        last = S.tap(gen_rec(i, base), 1760000000 + base + i)
    return {"last": last}


def _pct(hist, q):
    """Upper edge (us) of the 0.1 ms bucket holding quantile q of the step durations."""
    total = sum(hist)
    acc = 0
    for i, n in enumerate(hist):
        acc += n
        if total and acc >= q * total:
            return (i + 1) * 100
    return 0


def op_sync(req):
    c = S.client
    t0 = time.ticks_ms()
    if c.state == 5:  # left in backoff by the previous request: a fresh session now
        c.stop()
    c.start(t0)
    steps = 0
    worst = 0          # longest step that was not a bundle install (socket + one chunk)
    worst_install = 0  # the install step: ES256 verify + rename
    hist = _HIST  # preallocated: a 4 KB list per request needs a 4 KB hole
    for i in range(500):
        hist[i] = 0
    taps = []
    pending = list(req.get("during", []))  # taps answered while the sync runs
    every = req.get("tap_every", 0)
    max_ms = req.get("max_ms", 20000)
    while True:
        now = time.ticks_ms()
        if time.ticks_diff(now, t0) > max_ms:
            break
        before = c.state
        a = time.ticks_us()
        st = c.step(now)
        d = time.ticks_diff(time.ticks_us(), a)
        if before == 4:
            worst_install = max(worst_install, d)
        else:
            worst = max(worst, d)
            hist[min(d // 100, 499)] += 1  # 0.1 ms buckets for the percentiles
        steps += 1
        if every and pending and steps % every == 0:
            taps.append(S.tap(pending.pop(0), 1760100000 + steps))
        if st == 6:  # DONE
            break
        if st == 5 and req.get("stop_on_fail"):
            break
        if st == 5:
            time.sleep_ms(5)
    while pending:  # the rest of the riders after the sync
        taps.append(S.tap(pending.pop(0), 1760200000))
    js = S.journal.status()
    return {"p50_step_us": _pct(hist, 0.5), "p99_step_us": _pct(hist, 0.99),
            "p999_step_us": _pct(hist, 0.999), "state": c.state, "steps": steps, "worst_step_us": worst, "worst_install_us": worst_install,
            "ms": time.ticks_diff(time.ticks_ms(), t0), "acked": c.acked,
            "uploaded": c.uploaded, "installed": c.installed, "errors": c.errors,
            "last_error": c.last_error, "cycles": c.cycles, "taps": taps,
            "unsent": js.unsent, "times": S.times[-1:],
            "time_refused": None if c.time_refused is None else list(c.time_refused)}


def op_prof(req):
    """Time the journal calls the client makes and the steps by state (for the bench)."""
    import gc
    j = S.journal
    tm = {"unsent": 0, "ack": 0, "gc": 0}
    ou, oa = j.unsent, j.ack

    def unsent(a, b):
        t = time.ticks_us()
        r = ou(a, b)
        tm["unsent"] = max(tm["unsent"], time.ticks_diff(time.ticks_us(), t))
        return r

    def ack(s):
        t = time.ticks_us()
        oa(s)
        tm["ack"] = max(tm["ack"], time.ticks_diff(time.ticks_us(), t))
    S.client.journal = type("J", (), {"unsent": staticmethod(unsent), "ack": staticmethod(ack),
                                      "status": staticmethod(j.status)})
    t = time.ticks_us()
    gc.collect()
    tm["gc"] = time.ticks_diff(time.ticks_us(), t)
    c = S.client
    c.start(time.ticks_ms())
    by = {}
    while c.state not in (5, 6):
        st = c.state
        a = time.ticks_us()
        c.step(time.ticks_ms())
        d = time.ticks_diff(time.ticks_us(), a)
        by[st] = max(by.get(st, 0), d)
    S.client.journal = j
    return {"max_us": tm, "step_by_state": by, "state": c.state}


def op_status(req):
    js = S.journal.status()
    return {"unsent": js.unsent, "last_seq": js.last_seq, "acked_seq": js.acked_seq}


def op_mem(req):
    import gc
    gc.collect()
    return {"free": gc.mem_free()}


OPS = {"init": op_init, "tap": op_tap, "sync": op_sync, "status": op_status, "gen": op_gen, "prof": op_prof, "mem": op_mem}


serve(OPS)
