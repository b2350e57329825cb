"""Sync figures: a validator (MicroPython, real journal on the flash model) syncing 2,000
taps to the depot on loopback; the depot's ingest rate over HTTP; the back office's ingest
rate on SQLite and on PostgreSQL (a throw-away cluster, fsync on, like SQLite's
synchronous=FULL)."""

import statistics
import tempfile
import time
import urllib.request

import cbor2

from host.backoffice.store import open_store
from host.depot import wire
from host import synckeys
from tests.host.sync_support import SECRET, Depot, Validator

TAPS = 2000
RUNS = 3
ESP32_TYPICAL = 170  # DESIGN §2: unix port ~170x faster than the ESP32 on typical code


def _sync_runs():
    rows = []
    times, steps, worst, p99, p999, jprof = [], [], [], [], [], []
    for _ in range(RUNS):
        with tempfile.TemporaryDirectory() as tmp:
            d = Depot(tmp + "/depot.db")
            d.store.register("val-1", SECRET)
            v = Validator(tmp, d.url, batch=24, flash_size=512 * 1024)
            try:
                v.gen(TAPS)
                r = v.sync(max_ms=120000)
                assert r["state"] == 6 and r["uploaded"] == TAPS, r
                assert len(d.store.taps("val-1")) == TAPS
                times.append(r["ms"])
                steps.append(r["steps"])
                worst.append(r["worst_step_us"])
                p99.append(r["p99_step_us"])
                p999.append(r["p999_step_us"])
                v.gen(TAPS, base=TAPS)  # a second load, synced with the journal calls timed
                jprof.append(v.ask({"op": "prof"}))
            finally:
                v.close()
                d.stop()
    med = statistics.median(times)
    rows.append({"name": "sync 2,000 taps, validator under MicroPython -> depot (loopback)",
                 "value": med, "unit": "ms",
                 "note": "median of %d; batches of 24 records, HMAC each; %d steps"
                         % (RUNS, statistics.median(steps))})
    rows.append({"name": "  same, records per second", "value": TAPS / (med / 1000.0),
                 "unit": "rec/s", "note": "unix port; on the ESP32 Wi-Fi and flash dominate"})
    w = statistics.median(worst)
    q = statistics.median(p99)
    rows.append({"name": "client step p99 (unix port)", "value": q / 1000.0, "unit": "ms",
                 "note": "0.1 ms histogram over all steps of a run; median of %d runs" % RUNS})
    rows.append({"name": "client step p99.9 (unix port)", "value": statistics.median(p999)
                 / 1000.0, "unit": "ms", "note": "same histogram"})
    ju = statistics.median(j["max_us"]["unsent"] for j in jprof)
    ja = statistics.median(j["max_us"]["ack"] for j in jprof)
    rows.append({"name": "  of which journal.unsent(24) max / ack max", "value": "%.1f / %.1f"
                 % (ju / 1000.0, ja / 1000.0), "unit": "ms",
                 "note": "the journal's calls inside the longest steps (file-backed flash "
                         "model); the client's own work per step is the rest"})
    rows.append({"name": "client step max (unix port)", "value": w / 1000.0, "unit": "ms",
                 "note": "median over runs of the longest step; includes journal.unsent/ack "
                         "on the file-backed flash model, GC, and scheduler noise (2 shared "
                         "cores)"})
    rows.append({"name": "client step p99, ESP32 estimate", "value": q * ESP32_TYPICAL / 1000.0,
                 "unit": "ms", "note": "ESTIMATE: unix p99 x%d (DESIGN §2 typical bytecode "
                 "factor); socket and flash time on the board are not modelled" % ESP32_TYPICAL})
    rows.append({"name": "client step max, ESP32 estimate", "value": w * ESP32_TYPICAL / 1e6,
                 "unit": "s", "note": "ESTIMATE: unix max x%d, same caveats; this is the "
                 "longest a tap could wait for a sync step" % ESP32_TYPICAL})
    return rows


def _install_step():
    """The one long client step: a downloaded bundle's ES256 check + rename."""
    from host import bundles as hb
    from tests.host.sync_support import OPKEY
    us = []
    for _ in range(RUNS):
        with tempfile.TemporaryDirectory() as tmp:
            d = Depot(tmp + "/depot.db")
            d.store.register("val-1", SECRET)
            d.store.add_bundle(hb.FARES, 3, hb.sign_bundle(hb.FARES, 3, hb.fares_body(
                {0: 3500, 1: 1000}), OPKEY))
            v = Validator(tmp, d.url)
            try:
                r = v.sync()  # the first verify also builds P-256's tables: a warm-up
                assert r["installed"] == [[3, 3]], r
                d.store.add_bundle(hb.FARES, 4, hb.sign_bundle(hb.FARES, 4, hb.fares_body(
                    {0: 3600, 1: 1000}), OPKEY))
                r = v.sync()
                assert r["installed"] == [[3, 3], [3, 4]], r
                us.append(r["worst_install_us"])
            finally:
                v.close()
                d.stop()
    m = statistics.median(us)
    return [{"name": "bundle install step (ES256 verify + rename), unix port", "value": m / 1000,
             "unit": "ms", "note": "median of %d (second install of a process); runs only when "
                                   "the app passes allow_slow" % RUNS},
            {"name": "bundle install step, ESP32 estimate", "value": m * 115 / 1e6,
             "unit": "s", "note": "ESTIMATE: unix x115 (DESIGN §2 bignum-heavy factor)"}]


def _heap():
    """Heap the sync client costs on MicroPython: its modules' bytecode and its buffers."""
    import os
    import subprocess

    from tests.host.sync_support import mpy_firmware
    from tests.support.mp import MP, ROOT
    code = """
import gc
gc.collect(); a = gc.mem_free()
import sync.client
gc.collect(); b = gc.mem_free()
c = sync.client.SyncClient("http://127.0.0.1:1", "val-1", b"k" * 32, None, b"\x04" * 65)
gc.collect(); d = gc.mem_free()
print(a - b, b - d)
"""
    env = dict(os.environ, MICROPYPATH=mpy_firmware())  # .mpy, as on the board
    r = subprocess.run([MP, "-X", "heapsize=128K", "-c", code], capture_output=True,
                       text=True, env=env, cwd=str(ROOT), timeout=60, check=True)
    mods, bufs = (int(x) for x in r.stdout.split())
    return [{"name": "sync client heap: modules (sync, bundles, hmac256)", "value": mods,
             "unit": "B", "note": "loaded as .mpy (x64 build of the same sources) like the "
                                  "board's .mpy files; the app imports them at the depot"},
            {"name": "sync client heap: one SyncClient", "value": bufs, "unit": "B",
             "note": "receive buffer 1.5 KiB + batch buffer 2 KiB + the two derived keys + state, allocated once"}]


def _record(i):
    return cbor2.dumps({1: 1760000000 + i, 2: 0, 3: 1, 4: 0, 5: 0, 6: b"w%07d" % (i % 500),
                        7: b"p%07d" % (i % 500), 8: 0, 9: 3500, 10: b"%016d" % i, 11: 1})


def _depot_ingest():
    n, per = 10000, 500
    with tempfile.TemporaryDirectory() as tmp:
        d = Depot(tmp + "/depot.db")
        d.store.register("val-1", SECRET)
        key = synckeys.derive(SECRET, synckeys.SYNC)
        rkey = synckeys.derive(SECRET, synckeys.RECORD)
        bodies = [wire.encode_batch("val-1", 1, 0, [
            (s, 0, _record(s), synckeys.record_tag(rkey, "val-1", 1, s, 0, _record(s)))
            for s in range(b * per + 1, (b + 1) * per + 1)]) for b in range(n // per)]
        t0 = time.perf_counter()
        for body in bodies:
            req = urllib.request.Request(d.url + "/v2/sync/val-1/batch", data=body,
                                         method="POST",
                                         headers={"X-BRT-MAC": wire.mac(key, body)})
            with urllib.request.urlopen(req, timeout=30) as r:
                r.read()
        dt = time.perf_counter() - t0
        assert len(d.store.taps("val-1")) == n
        d.stop()
    return {"name": "depot ingest over HTTP (SQLite WAL, synchronous=FULL)", "value": n / dt,
            "unit": "rows/s", "note": "%d records in batches of %d, one commit per batch"
                                      % (n, per)}


def _bo_ingest(store, label):
    n, per = 10000, 500
    rkey = synckeys.derive(SECRET, synckeys.RECORD)
    taps = [("val-%d" % (i % 10), 1, i, 0, _record(i),
             synckeys.record_tag(rkey, "val-%d" % (i % 10), 1, i, 0, _record(i)))
            for i in range(n)]
    t0 = time.perf_counter()
    for b in range(n // per):
        store.ingest("depot-A", "depot-A:%d" % b, taps[b * per:(b + 1) * per])
    dt = time.perf_counter() - t0
    assert store.count() == n
    return {"name": "back office ingest, %s" % label, "value": n / dt, "unit": "rows/s",
            "note": "%d tap records (tag checked, CBOR parsed) in batches of %d, one "
                    "transaction each" % (n, per)}


def run():
    rows = _sync_runs()
    rows += _install_step()
    rows += _heap()
    rows.append(_depot_ingest())
    with tempfile.TemporaryDirectory() as tmp:
        s = open_store(tmp + "/bo.db")
        s.register_depot("depot-A", b"A" * 32)
        for i in range(10):
            s.register_validator("val-%d" % i, ["depot-A"], secret=SECRET)
        rows.append(_bo_ingest(s, "SQLite"))
        s.close()
    from tests.host.backoffice_pg import Cluster, _bindir
    if _bindir() is None:
        rows.append({"name": "back office ingest, PostgreSQL", "value": "skipped",
                     "unit": "", "note": "no PostgreSQL binaries here"})
        return rows
    c = Cluster(_bindir(), fsync=True).start()
    try:
        s = open_store(c.new_database())
        s.register_depot("depot-A", b"A" * 32)
        for i in range(10):
            s.register_validator("val-%d" % i, ["depot-A"], secret=SECRET)
        rows.append(_bo_ingest(s, "PostgreSQL 15"))
        s.close()
    finally:
        c.stop()
    rows[-1]["note"] += "; local cluster, Unix socket, fsync on"
    return rows
