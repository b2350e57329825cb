"""Fleet-day figures (sim/fleet.py): the 10 % sample's wall time, run here; taps through the
real decision core under MicroPython (the unix port on this machine, not the ESP32); the
whole day's wall time from the last `make fleet-day FLEET_ARGS=--full` (it takes minutes:
set BRT_BENCH_FLEET_FULL=1 to run it here instead). The back office's ingest rows/s on
SQLite and PostgreSQL are in the `sync` group (bench_sync.py)."""

import json
import os
import pathlib
import tempfile
import time

from sim import fleet as simfleet
from sim import fleet_model as fm
from sim import fleet_recon

ROOT = pathlib.Path(__file__).resolve().parents[1]
FULL = ROOT / "build" / "fleet-full" / "reconciliation.json"


def _day(sample, out):
    f = simfleet.Fleet(fm.Plan(1, sample), out, jobs=os.cpu_count() or 2, log=lambda s: None)
    try:
        f.run()
        return fleet_recon.reconcile(f)
    finally:
        f.close()


def _rows(rec, label, note):
    n, wall = rec["decisions"], rec["wall_s"]
    return [
        {"name": "fleet day, %s: wall time" % label, "value": wall, "unit": "s",
         "note": "%d buses, %d taps, %s, %d cores%s" % (
             rec["plan"]["buses"], n, "reconciled" if rec["ok"] else "MISMATCH",
             os.cpu_count() or 2, note)},
        {"name": "fleet day, %s: taps/s end to end" % label, "value": n / wall, "unit": "taps/s",
         "note": "decisions, syncs, depots, back office, all of the day"},
        {"name": "decision core under MicroPython, %s" % label,
         "value": 1000 / rec["decide_ms_mean"], "unit": "taps/s",
         "note": "per process (one core), mean %.2f ms a decision on the unix port (x86-64; "
                 "the ESP32 tap is modelled by make model, not here)" % rec["decide_ms_mean"]},
    ]


def run():
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        rows += _rows(_day(0.1, tmp + "/sample"), "10 % sample", "")
    if os.environ.get("BRT_BENCH_FLEET_FULL") == "1":
        with tempfile.TemporaryDirectory() as tmp:
            rows += _rows(_day(1.0, tmp + "/full"), "whole fleet", "")
    elif FULL.exists():
        rec = json.loads(FULL.read_text())
        when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(FULL.stat().st_mtime))
        rows += _rows(rec, "whole fleet", "; from make fleet-day --full at %s UTC" % when)
    else:
        rows.append({"name": "fleet day, whole fleet", "value": "not run", "unit": "",
                     "note": "make fleet-day FLEET_ARGS=--full (or BRT_BENCH_FLEET_FULL=1)"})
    return rows
