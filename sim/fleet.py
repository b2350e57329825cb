"""`python -m sim fleet` / `make fleet-day`: a day of a fleet modelled on Trans-Semarang
(sim/fleet_model.py), every tap decided by the real firmware decision core under
MicroPython (sim/fleet_mp.py: one process per bus, a simulated clock), the evening's sync
with real depot hosts over HTTP on loopback, the depots' uplinks to the back office
(SQLite, or PostgreSQL with --store), settlement, and the reconciliation
(sim/fleet_recon.py): exit 0 only if every tap and every rupiah is accounted for and every
planted anomaly was found.

The day, in rounds (processes stay up between rounds; 2 buses decide at a time by default):
  1. morning taps (to 13:00);  noon: the operator revokes a wallet, the depots pull it
  2. 13:05 layover: 30 % of the buses sync at their depot (upload, new deny list, time)
  3. afternoon taps; brown-outs;  4. 22:30 evening sync (all but the buses that miss the
  depot), uplinks deliver (the third depot's uplink is down 11:00-23:00);
  5. 23:30 uplink restored: that depot pulls the deny list, its parked buses poll;
  6. two days later the missed buses come in.  Then the back office settles.
"""

import argparse
import concurrent.futures as cf
import json
import os
import pathlib
import secrets
import shutil
import socket
import subprocess
import sys
import time

from host.backoffice import dashboard
from host.backoffice.server import BackofficeServer
from host.backoffice.store import open_store
from host.depot.outbox import Uplink
from host.depot.server import DepotServer
from host.depot.store import DepotStore
from sim import fleet_model as fm
from sim import fleet_recon
from sim.fleet_tokens import DS3231_RESET, FleetWorld
from sim.mpycache import mpy_dir

ROOT = pathlib.Path(__file__).resolve().parents[1]
MP = str(pathlib.Path(sys.executable).parent / "micropython")
HEAP = "512K"   # the whole boot path from source + the sync client (the S3 has PSRAM)


class Clock:
    """A virtual wall clock (depots and back office): the simulated day's time."""

    def __init__(self, t):
        self.t = t

    def __call__(self):
        return self.t


def firmware_mpy(out):
    """firmware/ compiled to .mpy (x64, for the unix port) into `out`, as the board gets it
    as .mpy (`make firmware`): nothing is compiled at each of the day's boots. A file
    mpy-cross refuses is left out: its source, next on the path, is imported instead."""
    fw = ROOT / "firmware"
    cross = str(pathlib.Path(sys.executable).parent / "mpy-cross")
    for src in fw.rglob("*.py"):
        if src.name in ("main.py", "boot.py"):
            continue
        dst = pathlib.Path(out) / src.relative_to(fw).with_suffix(".mpy")
        dst.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([cross, "-march=x64", "-o", str(dst), str(src)], capture_output=True)
    return str(out)


class BusProc:
    """One bus's validator: a MicroPython process running sim/fleet_mp.py."""

    def __init__(self, bus, d, mpy):
        self.bus, self.dir = bus, d
        env = dict(os.environ)
        fw = ROOT / "firmware"
        env["MICROPYPATH"] = os.pathsep.join([mpy, mpy_dir(fw), str(fw),
                                              str(ROOT / "sim/vboard"), ".frozen"])
        self.p = subprocess.Popen([MP, "-X", "heapsize=" + HEAP, str(ROOT / "sim/fleet_mp.py")],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, bufsize=1, env=env,
                                  cwd=str(ROOT))

    def ask(self, **req):
        self.p.stdin.write(json.dumps(req) + "\n")
        self.p.stdin.flush()
        while True:
            line = self.p.stdout.readline()
            if not line:
                raise RuntimeError("bus %s: micropython died: %s" % (self.bus.id,
                                                                      self.p.stderr.read()))
            if line.startswith("@@J "):
                ans = json.loads(line[4:])
                if "error" in ans:
                    raise RuntimeError("bus %s: %s" % (self.bus.id, ans["error"]))
                return ans

    def close(self):
        try:
            self.p.stdin.close()
            self.p.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.p.kill()


def _dead_url():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()    # nobody listens there: connection refused, as with an uplink that is down
    return "http://127.0.0.1:%d" % port


class Fleet:
    def __init__(self, plan, out, store_url=None, jobs=2, log=print):
        self.plan, self.out, self.jobs, self.log = plan, pathlib.Path(out), jobs, log
        shutil.rmtree(self.out, ignore_errors=True)
        self.out.mkdir(parents=True)
        self.world = FleetWorld(plan)
        self.clock = Clock(fm.DAY0)
        self.bo_store = open_store(store_url or str(self.out / "backoffice.db"), self.clock)
        self.bo = BackofficeServer(self.bo_store).start()
        self.depots = {}
        for d in fm.DEPOTS:
            st = DepotStore(str(self.out / (d + ".db")), clock=self.clock).open()
            st.set_meta("depot_id", d)
            srv = DepotServer(st, clock=self.clock).start()
            up = Uplink(st, self.bo.url, self.world.depot_secret(d),
                        operator_key=self.world.operator, clock=self.clock)
            self.bo_store.register_depot(d, self.world.depot_secret(d))
            self.depots[d] = {"store": st, "server": srv, "uplink": up}
        self.bo.depot_status_urls = [x["server"].url + "/v2/status" for x in self.depots.values()]
        self.bo.operator_token = secrets.token_urlsafe(18)    # the dashboard's credential
        tok = self.out / "operator-token"
        tok.write_text(self.bo.operator_token + "\n")
        tok.chmod(0o600)
        for pid, wid, allow in self.world.passes():
            self.bo_store.register_pass(pid, wid, allow)
        # provisioning and the day's tokens, one bus after the other (deterministic); the
        # code a clone copies exists before either bus decides
        for b in plan.buses:
            for trip in b.trips:
                if trip.copy_of is not None and trip.copy_of.qr is None:
                    self.world.tap_line(b, 0, trip.copy_of)
        self.dirs = {b.id: self._prepare(b) for b in plan.buses}
        self.mpy = firmware_mpy(self.out / "mpy")
        self.procs = {}
        self.tally = {b.id: {"n": 0, "acc": 0, "rub": 0, "answers": {}, "seqs": [], "us": 0,
                             "decisions": 0, "cuts": 0, "durable_cut": 0} for b in plan.buses}
        self.learned = {}     # bus -> virtual time its validator installed the revocation
        self.syncs = {}       # bus -> [(round, uploaded, time taken?)]
        self.revocation = None
        self.timing = {}

    # --- the buses ------------------------------------------------------------------------
    def _prepare(self, bus):
        d = self.out / "bus" / bus.id
        prov = d / "provision"
        prov.mkdir(parents=True)
        for name, data in self.world.provision(
                bus, self.depots[bus.depot]["server"].url).items():
            (prov / name).write_bytes(data)
        st = self.depots[bus.depot]["store"]
        st.register(bus.device, self.world.secret(bus))
        self.bo_store.register_validator(bus.device, [bus.depot], secret=self.world.secret(bus))
        dashboard.register_route(self.bo_store, bus.device, bus.id, bus.route)
        # the day's taps in two files: before and after the 13:00-13:10 layover
        split = fm.LAYOVER_T - 300
        files = [open(d / "am.jsonl", "w"), open(d / "pm.jsonl", "w")]
        for k, trip in enumerate(bus.trips):
            if bus.layover and split <= trip.t < fm.LAYOVER_T + 300:
                trip.t += 600   # nobody boards while the bus is parked at the depot
            t_dev, ok = None, True
            cf_ = bus.clock_fault
            if cf_ and cf_[0] <= trip.t < cf_[1]:
                t_dev, ok = DS3231_RESET + (trip.t - cf_[0]), False
            line = self.world.tap_line(bus, k, trip, t_dev, ok)
            if k in bus.cuts:
                line["cut"] = 1 + k % 3
                line["again"] = self.world.tap_line(bus, k, trip, t_dev, ok, salt=1)
            files[0 if trip.t < split else 1].write(json.dumps(line) + "\n")
        for f in files:
            f.close()
        return d

    def _each(self, buses, fn):
        with cf.ThreadPoolExecutor(self.jobs) as ex:
            for f in cf.as_completed([ex.submit(fn, b) for b in buses]):
                f.result()

    def _add(self, bus, ans):
        t = self.tally[bus.id]
        for k in ("n", "acc", "rub", "us", "decisions", "cuts", "durable_cut"):
            t[k] += ans[k]
        t["seqs"] += ans["seqs"]
        for k, v in ans["answers"].items():
            t["answers"][k] = t["answers"].get(k, 0) + v

    def _morning(self, bus):
        d = self.dirs[bus.id]
        p = self.procs[bus.id] = BusProc(bus, d, self.mpy)
        p.ask(op="boot", image=str(d / "flash.img"), provision=str(d / "provision"))
        self._add(bus, p.ask(op="taps", path=str(d / "am.jsonl")))

    def _afternoon(self, bus):
        p = self.procs[bus.id]
        self._add(bus, p.ask(op="taps", path=str(p.dir / "pm.jsonl")))
        if bus.brownouts:
            self._add(bus, p.ask(op="brownout", at=1))

    def _sync(self, bus, now, label):
        ans = self.procs[bus.id].ask(op="sync", url=self.depots[bus.depot]["server"].url,
                                     now=now, trusted=bus.clock_fault is None or
                                     now >= bus.clock_fault[1], max_ms=60000)
        if ans["state"] != 6:
            raise RuntimeError("bus %s: %s sync did not finish: %s" % (bus.id, label,
                                                                       ans["last_error"]))
        self.syncs.setdefault(bus.id, []).append(
            {"round": label, "at": now, "uploaded": ans["uploaded"], "unsent": ans["unsent"],
             "time_set": ans["time"], "deny_version": ans["deny_version"]})
        if (self.revocation and bus.id not in self.learned
                and ans["deny_version"] >= self.revocation):
            self.learned[bus.id] = now

    def _deliver(self, now):
        """Each depot's uplink: pack and send until nothing is due (or it fails)."""
        self.clock.t = now
        for _d, x in self.depots.items():
            for _ in range(200):
                if x["uplink"].run_once(now) == 0:
                    break

    # --- the day ----------------------------------------------------------------------------
    def run(self):
        t0 = time.monotonic()
        _plan, buses = self.plan, self.plan.buses
        down = self.depots[fm.DEPOTS[2]]["uplink"]
        good_url = down.url
        self.clock.t = fm.DAY0 + 5 * fm.H
        self._each(buses, self._morning)
        self.log("morning: %d buses, %d records" % (len(buses), self._n()))
        # noon: the operator revokes a wallet; the third depot's uplink is down since 11:00
        self.clock.t = fm.NOON
        down.url = _dead_url()
        wid = self.world.ids["revoked"][0]
        self.revocation = self.bo_store.publish(self.world.operator,
                                                extra=[(b"W", wid, "revoked by the operator")])
        for x in self.depots.values():
            x["uplink"].pull_deny(self.world.opub)
        self.clock.t = fm.LAYOVER_T
        self._each([b for b in buses if b.layover], lambda b: self._sync(b, fm.LAYOVER_T,
                                                                         "layover"))
        self._deliver(fm.LAYOVER_T + 300)
        self._each(buses, self._afternoon)
        self.log("afternoon: %d records" % self._n())
        self.clock.t = fm.EVENING_T
        self._each([b for b in buses if not b.missed],
                   lambda b: self._sync(b, fm.EVENING_T, "evening"))
        self._deliver(fm.EVENING_T + 300)
        # 23:30 the uplink is back: the depot delivers and pulls the deny list; its parked
        # buses poll (a hello every 10 s while parked: docs/sync-api.md) and learn it
        down.url = good_url
        self._deliver(fm.RESTORE_T)
        down.pull_deny(self.world.opub)
        self.clock.t = fm.RESTORE_T + 300
        self._each([b for b in buses if not b.missed and b.depot == fm.DEPOTS[2]],
                   lambda b: self._sync(b, fm.RESTORE_T + 300, "restore"))
        self._deliver(fm.RESTORE_T + 600)
        # two days later the buses that missed the depot come in
        self.clock.t = fm.LATE_T
        self._each([b for b in buses if b.missed], lambda b: self._sync(b, fm.LATE_T, "late"))
        self._deliver(fm.LATE_T + 300)
        # the back office settles: deny what the analysis found
        self.settled = self.bo_store.publish(self.world.operator)
        self.timing["wall_s"] = time.monotonic() - t0
        return self

    def _n(self):
        return sum(t["n"] for t in self.tally.values())

    def close(self):
        for p in self.procs.values():
            p.close()
        for x in self.depots.values():
            x["server"].stop()
        self.bo.stop()


def add_parser(sub):
    f = sub.add_parser("fleet", help="a fleet day at Trans-Semarang scale, reconciled")
    f.add_argument("--seed", type=int, default=1)
    f.add_argument("--sample", type=float, default=0.1, help="share of the fleet (default 0.1)")
    f.add_argument("--full", action="store_true", help="the whole fleet (270 buses)")
    f.add_argument("--store", default=None, help="back office store (default SQLite in --out)")
    f.add_argument("--out", default=None, help="default build/fleet (build/fleet-full)")
    f.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    f.add_argument("--serve", type=float, default=0,
                   help="keep the back office up this many seconds (the dashboard)")
    return f


def run(args):
    plan = fm.Plan(args.seed, 1.0 if args.full else args.sample)
    args.out = args.out or ("build/fleet-full" if args.full else "build/fleet")
    print("fleet day: %(buses)d of %(fleet)d buses, %(noncash_trips)d non-cash trips, "
          "%(wallets)d wallets, seed %(seed)d" % plan.summary(), flush=True)
    fleet = Fleet(plan, args.out, args.store, args.jobs,
                  log=lambda s: print("  " + s, flush=True))
    try:
        fleet.run()
        rec = fleet_recon.reconcile(fleet)
        fleet_recon.print_table(rec)
        pathlib.Path(args.out, "reconciliation.json").write_text(json.dumps(rec, indent=1))
        print("written %s/reconciliation.json" % args.out)
        if args.serve:
            print("dashboard: %s/dashboard (operator credential: %s/operator-token)"
                  % (fleet.bo.url, args.out), flush=True)
            time.sleep(args.serve)
        return 0 if rec["ok"] else 1
    finally:
        fleet.close()


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m sim")
    sub = p.add_subparsers(dest="cmd", required=True)
    add_parser(sub)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

__all__ = ["Fleet", "add_parser", "run"]
