# MicroPython: one bus's validator for a fleet day (sim/fleet.py). The real decision core -
# app.state.assemble (config, signed bundles, replay ring, allowance, journal recovery) and
# the Pipeline - on the flash model, and firmware/sync's SyncClient over real HTTP to the
# bus's depot on loopback. The clock is simulated: every tap carries its own time, so a
# bus's whole day runs as fast as the decisions do. One JSON request per stdin line, one
# "@@J {json}" answer line (other lines the firmware prints are told apart).
#
#   {"op": "boot", "image": path, "provision": dir}
#   {"op": "taps", "path": file}   decide every tap in the file (JSON lines, below);
#        -> tallies of this call: records journaled, accepted, rupiah, answers, seqs
#   {"op": "brownout", "at": n}    power fails n flash operations into idle-time work
#   {"op": "sync", "url": u, "now": t, "trusted": bool, "max_ms": ms}   one depot session
#        (a reboot follows when bundles were installed, as app/loop.py does)
#   {"op": "status"}
# A tap line: {"t": device time, "ok": clock trusted, "q": QR text | "n": NFC answer hex,
# "c": challenge hex, "cut": n (power fails n flash operations into this decision),
# "again": {a tap line: the rider's retry after the cut}}.
import binascii
import gc
import json
import os
import time

import esp32
import flashdev
import simboot
from app import record, state
from mpserve import serve

H = binascii.unhexlify
S = {"flash": None, "v": None, "mounted": False, "img": None, "prov": None, "now": 0,
     "ok": True, "cuts": 0, "boots": 0}


def boot(req=None):
    if req and "image" in req:
        S["img"], S["prov"] = req["image"], req["provision"]
    if S["mounted"]:
        try:
            os.umount("/data")
        except OSError:
            pass
        S["mounted"] = False
    fl = S["flash"]
    if fl is None:
        fl = flashdev.Flash(flashdev.DATA_SIZE, path=S["img"])
        S["flash"] = fl
    fl.power_on()
    simboot.mount_data(fl)
    S["mounted"] = True
    try:
        os.stat("/data/config.json")
    except OSError:     # first power-on: what provisioning wrote
        for name in os.listdir(S["prov"]):
            with open(S["prov"] + "/" + name, "rb") as f:
                data = f.read()
            with open("/data/" + name, "wb") as f:
                f.write(data)
    part = esp32.Partition.find(esp32.Partition.TYPE_DATA, label="journal")
    S["v"] = None
    gc.collect()
    v = state.assemble(part[0])
    S["v"] = v
    S["boots"] += 1
    st = v.journal.status()
    return {"faults": v.faults, "last_seq": st.last_seq, "unsent": st.unsent,
            "deny_version": v.deny_version}


class Tally:
    def __init__(self):
        self.n = self.acc = self.rub = 0
        self.answers = {}
        self.seqs = []
        self.us = 0
        self.decisions = 0
        self.cuts = 0
        self.durable_cut = 0

    def add(self, answer, reason, fare, seq):
        self.n += 1
        k = "%d/%d" % (answer, reason)
        self.answers[k] = self.answers.get(k, 0) + 1
        if answer == 0:
            self.acc += 1
            self.rub += fare
        self.seqs.append(seq)

    def out(self):
        return {"n": self.n, "acc": self.acc, "rub": self.rub, "answers": self.answers,
                "seqs": self.seqs, "us": self.us, "decisions": self.decisions,
                "cuts": self.cuts, "durable_cut": self.durable_cut}


def _decide(tap, ty):
    v = S["v"]
    p = v.pipeline
    t, ok = tap["t"], tap.get("ok", True)
    a = time.ticks_us()
    if "q" in tap:
        ch = record.QR
        d = p.decide_qr(tap["q"].encode(), t, ok) if p else v.refuse(ch, v.why_not_ready(), t, ok)
    else:
        ch = record.NFC
        d = p.decide_nfc(H(tap["n"]), H(tap["c"]), t, ok) if p else \
            v.refuse(ch, v.why_not_ready(), t, ok)
    ty.us += time.ticks_diff(time.ticks_us(), a)
    ty.decisions += 1
    if d.seq is not None:
        ty.add(d.answer, d.reason, d.fare, d.seq)
    return d


def _after_cut(ty, last):
    """Power back on; a record made durable by the cut decision (the rider saw nothing) is
    still a tap the bus decided: count it from the journal, as the depot will get it."""
    ty.cuts += 1
    boot()
    j = S["v"].journal
    if j.status().last_seq > last:
        for seq, _t, payload in j.since(last + 1):
            r = record.decode(payload)
            ty.add(r[record.T_ANSWER], r[record.T_REASON], r.get(record.T_FARE, 0), seq)
            ty.durable_cut += 1


def taps(req):
    ty = Tally()
    f = open(req["path"])
    for line in f:
        tap = json.loads(line)
        while tap is not None:
            fl = S["flash"]
            if tap.get("cut"):
                fl.arm_cut(fl.op_index + tap["cut"], tap["cut"])
            last = S["v"].journal.status().last_seq
            try:
                _decide(tap, ty)
                tap = None
            except flashdev.PowerCut:
                _after_cut(ty, last)
                tap = tap.get("again")
            S["flash"]._cut_at = -1   # a cut not reached in this decision is not kept
        gc.collect()    # between taps, as app/loop.py does after every answer
    f.close()
    # idle time at the end of the trip: checkpoint the RAM state
    p = S["v"].pipeline
    while p is not None and p.checkpoint_step(0):
        pass
    return ty.out()


def brownout(req):
    """The supply sags during idle-time work (a checkpoint, a sector pre-erase)."""
    fl = S["flash"]
    ty = Tally()
    last = S["v"].journal.status().last_seq
    fl.arm_cut(fl.op_index + req["at"], req["at"])
    try:
        p = S["v"].pipeline
        for _ in range(200):
            if not (p.checkpoint_step(0) or S["v"].journal.maintain()):
                break
        # nothing left to write: the sag hits the next boot's recovery instead
        boot()
    except flashdev.PowerCut:
        pass
    _after_cut(ty, last)
    return ty.out()


def sync(req):
    from sync import SyncClient
    v = S["v"]
    cfg = v.config
    S["now"] = req["now"]
    with open("/data/secret.bin", "rb") as f:
        secret = f.read()
    got = []

    def on_time(t):
        got.append(t)
        S["ok"] = True
    c = SyncClient(req["url"], cfg.device_id, secret, v.journal, cfg.operator_key_bytes(),
                   data_dir="/data", on_time=on_time, unix_now=lambda: S["now"],
                   clock=lambda: (S["now"], req.get("trusted", True)))
    t0 = time.ticks_ms()
    c.start(t0)
    while True:
        now = time.ticks_ms()
        st = c.step(now)
        if st == 6 or time.ticks_diff(now, t0) > req.get("max_ms", 60000):
            break
        if st == 5:
            time.sleep_ms(5)
    out = {"state": c.state, "uploaded": c.uploaded, "acked": c.acked,
           "installed": [list(x) for x in c.installed], "errors": [list(x) for x in c.errors],
           "last_error": c.last_error, "time": got[-1] if got else None,
           "time_refused": None if c.time_refused is None else list(c.time_refused),
           "ms": time.ticks_diff(time.ticks_ms(), t0)}
    c.stop()
    c = None
    if out["installed"]:
        boot()      # new bundles: verified and loaded exactly as at power-on
    st = S["v"].journal.status()
    out.update({"unsent": st.unsent, "last_seq": st.last_seq,
                "deny_version": S["v"].deny_version})
    return out


def status(req):
    st = S["v"].journal.status()
    return {"last_seq": st.last_seq, "unsent": st.unsent, "boots": S["boots"],
            "deny_version": S["v"].deny_version, "faults": S["v"].faults}


serve({"boot": boot, "taps": taps, "brownout": brownout, "sync": sync, "status": status})
