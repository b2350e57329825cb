"""Reconciliation of a fleet day (sim/fleet.py): what the buses decided against what the back
office holds, per bus and per corridor, to the rupiah; the planted anomalies; how long the
revocation took to reach the last validator. `ok` is False on any mismatch.

The bus side is what each validator's decision core answered (plus the records a power cut
made durable before the answer: the journal has them, so the depot gets them); the back
office side is read from its store (the taps table, docs/sync-api.md) and its report over
HTTP (GET /v2/report), as an operator's tool would.
"""

import json
import urllib.request

import cbor2

from sim import fleet_model as fm


def _bo_rows(store):
    return store._all("SELECT device_id, seq, answer, reason, fare, wallet, pass_id, t, payload "
                      "FROM taps")


def reconcile(fleet):
    plan, world = fleet.plan, fleet.world
    req = urllib.request.Request(fleet.bo.url + "/v2/report", headers={
        "Authorization": "Bearer %s" % fleet.bo.operator_token})  # rider data: operator only
    with urllib.request.urlopen(req, timeout=30) as r:
        report = json.loads(r.read())
    by_dev = {b.device: b for b in plan.buses}
    bo = {b.id: {"seqs": set(), "n": 0, "acc": 0, "rub": 0, "flag1": 0} for b in plan.buses}
    wallet_rows = {}
    unknown = 0
    for dev, seq, answer, reason, fare, wallet, _pid, t, payload in _bo_rows(fleet.bo_store):
        bus = by_dev.get(dev)
        if bus is None:
            unknown += 1
            continue
        x = bo[bus.id]
        x["seqs"].add(int(seq))
        x["n"] += 1
        if answer == 0:
            x["acc"] += 1
            x["rub"] += int(fare or 0)
        if cbor2.loads(bytes(payload)).get(2) == 1:
            x["flag1"] += 1
        if wallet is not None:
            wallet_rows.setdefault(bytes(wallet), []).append((int(t), answer, reason, bus.id))
    buses, corridors = [], {}
    lost = doubled = 0
    for b in plan.buses:
        s, x = fleet.tally[b.id], bo[b.id]
        seqs = s["seqs"]
        b_lost = len(set(seqs) - x["seqs"])
        b_doubled = len(x["seqs"] - set(seqs)) + (len(seqs) - len(set(seqs)))
        lost += b_lost
        doubled += b_doubled
        row = {"bus": b.id, "route": b.route, "corridor": b.corridor, "depot": b.depot,
               "decided": s["n"], "in_backoffice": x["n"], "accepted": s["acc"],
               "accepted_bo": x["acc"], "rupiah": s["rub"], "rupiah_bo": x["rub"],
               "lost": b_lost, "doubled": b_doubled, "cuts": s["cuts"],
               "durable_cut": s["durable_cut"], "syncs": fleet.syncs.get(b.id, []),
               "clock_flagged": x["flag1"]}
        buses.append(row)
        c = corridors.setdefault(b.corridor, {"corridor": b.corridor, "buses": 0, "decided": 0,
                                              "in_backoffice": 0, "rupiah": 0, "rupiah_bo": 0})
        c["buses"] += 1
        for k in ("decided", "in_backoffice", "rupiah", "rupiah_bo"):
            c[k] += row[k]
    charged = sum(r["rupiah"] for r in buses)
    settled = sum(v["rupiah"] for v in report["settlement"].values())
    anomalies = _anomalies(plan, world, fleet, report, wallet_rows, bo)
    found = sum(1 for a in anomalies.values() if a["found"])
    same_day = [t for b, t in fleet.learned.items() if not plan_bus(plan, b).missed]
    decisions = sum(fleet.tally[b.id]["decisions"] for b in plan.buses)
    us = sum(fleet.tally[b.id]["us"] for b in plan.buses)
    rec = {
        "plan": plan.summary(), "buses": buses,
        "corridors": sorted(corridors.values(), key=lambda c: c["corridor"]),
        "decided": sum(r["decided"] for r in buses),
        "in_backoffice": report["taps"] - unknown, "unknown_in_backoffice": unknown,
        "rupiah_charged": charged, "rupiah_settled": settled, "lost": lost, "doubled": doubled,
        "gaps": report["gaps"], "alarms": report["alarms"], "evidence": report["evidence"],
        "anomalies": anomalies, "anomalies_found": found, "anomalies_planted": len(anomalies),
        "revocation": {
            "at": fm.NOON, "deny_version": fleet.revocation,
            "learned": len(fleet.learned), "validators": len(plan.buses),
            "learned_after": {_dur(t - fm.NOON): n for t, n in sorted(_count(
                fleet.learned.values()).items())},
            "last_same_day_s": (max(same_day) - fm.NOON) if same_day else None,
            "last_s": (max(fleet.learned.values()) - fm.NOON) if fleet.learned else None,
            "not_learned": sorted(set(b.id for b in plan.buses) - set(fleet.learned))},
        "decisions": decisions, "decide_ms_mean": us / 1000 / max(1, decisions),
        "wall_s": fleet.timing.get("wall_s"), "settled_deny_version": fleet.settled,
    }
    rec["ok"] = (lost == 0 and doubled == 0 and charged == settled and unknown == 0
                 and rec["decided"] == rec["in_backoffice"] and not report["gaps"]
                 and found == len(anomalies) and not rec["revocation"]["not_learned"]
                 and all(r["decided"] == r["in_backoffice"] and r["rupiah"] == r["rupiah_bo"]
                         for r in buses))
    return rec


def _count(values):
    out = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return out


def plan_bus(plan, bid):
    return next(b for b in plan.buses if b.id == bid)


def _anomalies(plan, world, fleet, report, wallet_rows, bo):
    out = {}
    wid = {n: world.ids[n][0] for n in ("clone", "revoked", "greedy")}
    pids = {n: world.ids[n][1] for n in ("greedy",)}
    twice = [p for p in report["proofs_used_twice"] if p[3] == wid["clone"].hex()]
    out["clone_double_use"] = {"found": bool(twice) and twice[0][2] == 2,
                               "evidence": twice, "planted": plan.planted["clone_double_use"]}
    rows = sorted(r for r in wallet_rows.get(wid["revoked"], []) if r[0] >= fm.NOON)
    want = []   # what each attempt should have been: refused iff that bus had learned it
    for t, _answer, _reason, bus in rows:
        learned = fleet.learned.get(bus)
        want.append(learned is not None and learned <= t)
    refused = [r for r in rows if r[2] == 41]
    out["revoked_attempts"] = {
        "found": len(rows) == len(plan.planted["revoked_attempts"]["buses"]) and bool(refused)
        and all((r[2] == 41) == w for r, w in zip(rows, want)),
        "attempts": len(rows), "refused_denied": len(refused),
        "accepted_before_bus_learned": sum(1 for r in rows if r[1] == 0),
        "evidence": [[t, a, rs, b] for t, a, rs, b in rows]}
    over = [o for o in report["over_allowance"] if o[0] == pids["greedy"].hex()]
    out["over_allowance"] = {"found": bool(over), "evidence": over,
                             "planted": plan.planted["over_allowance"]}
    cb = plan.clock_bus
    set_at = [s for s in fleet.syncs.get(cb.id, []) if s["time_set"]]
    out["clock_fault"] = {"found": bo[cb.id]["flag1"] > 0 and bool(set_at),
                          "bus": cb.id, "records_flagged": bo[cb.id]["flag1"],
                          "time_set_at": set_at[0]["at"] if set_at else None}
    return out


def _rp(n):
    return "Rp {:,}".format(n).replace(",", ".")


def print_table(rec):
    print()
    print("%-8s %5s %9s %9s %16s %16s" % ("corridor", "buses", "decided", "in BO", "charged",
                                          "settled"))
    for c in rec["corridors"]:
        print("%-8s %5d %9d %9d %16s %16s" % (c["corridor"], c["buses"], c["decided"],
                                              c["in_backoffice"], _rp(c["rupiah"]),
                                              _rp(c["rupiah_bo"])))
    print("%-8s %5d %9d %9d %16s %16s" % ("total", len(rec["buses"]), rec["decided"],
                                          rec["in_backoffice"], _rp(rec["rupiah_charged"]),
                                          _rp(rec["rupiah_settled"])))
    bad = [b for b in rec["buses"] if b["decided"] != b["in_backoffice"] or
           b["rupiah"] != b["rupiah_bo"]]
    print("per bus: %d of %d match%s" % (len(rec["buses"]) - len(bad), len(rec["buses"]),
                                         "" if not bad else "; MISMATCH: " +
                                         ", ".join(b["bus"] for b in bad[:10])))
    print("lost %d" % rec["lost"])
    print("doubled %d" % rec["doubled"])
    for name, a in rec["anomalies"].items():
        print("  anomaly %-18s %s" % (name, "found" if a["found"] else "NOT FOUND"))
    print("anomalies found %d of %d" % (rec["anomalies_found"], rec["anomalies_planted"]))
    rv = rec["revocation"]
    print("revocation at 12:00: %d of %d validators learned it; last the same day after %s, "
          "last of all after %s" % (rv["learned"], rv["validators"], _dur(rv["last_same_day_s"]),
                                    _dur(rv["last_s"])))
    print("  validators that learned it, by delay: " + ", ".join(
        "%s: %d" % kv for kv in rv["learned_after"].items()))
    print("power cuts %d (records made durable by a cut: %d); gaps %d; alarms %d" % (
        sum(b["cuts"] for b in rec["buses"]), sum(b["durable_cut"] for b in rec["buses"]),
        len(rec["gaps"]), rec["alarms"]))
    print("decisions %d, mean %.1f ms each in the unix port; wall %.0f s" % (
        rec["decisions"], rec["decide_ms_mean"], rec["wall_s"] or 0))
    print("RECONCILED" if rec["ok"] else "MISMATCH")


def _dur(s):
    if s is None:
        return "-"
    return "%dh%02dm" % (s // 3600, s % 3600 // 60)
