# MicroPython worker for the validator's host tests (tests/host/test_app_*.py): the real
# decision core - app.state.assemble (config, signed bundles, stores, journal) and the
# Pipeline - on the flash model, driven one JSON request per stdin line, one JSON answer
# per stdout line (tests/support/mp.py MPWorker). Runs with MICROPYPATH=firmware:sim/vboard.
#
# Requests:
#   {"op": "boot", "image": path, "provision": dir}   mount (seed /data on first boot),
#        assemble; -> faults, journal status
#   {"op": "qr", "text": str, "now": t, "clock_ok": bool}          -> decision summary
#   {"op": "nfc", "payload": hex, "challenge": hex, "now": t, "clock_ok": bool}
#   {"op": "cut", "at": n, "seed": s}   arm a power cut n flash operations from now
#   {"op": "checkpoint", "now": t}      idle-time checkpoint of the replay ring and sums
#   {"op": "flash"}                     the flash model's counters
#   {"op": "fill", "now": t}            append rejected tap records until JournalFull
#   {"op": "records", "limit": n, "ack": bool}   the oldest unsent records, decoded
#        (and then acknowledged, so the next call pages on)
#   {"op": "mem"}                       heap in use after a collection
# A power cut (flashdev.PowerCut) during a request answers {"cut": true}; the next
# request must be "boot" (RAM state is gone, as on a real board).
import gc
import io
import json
import os
import sys

import esp32
import flashdev
import simboot
from app import reasons, record, state

S = {"flash": None, "v": None, "mounted": False}


def _hexb(h):
    return bytes(int(h[i:i + 2], 16) for i in range(0, len(h), 2))


def boot(req):
    if S["mounted"]:
        try:
            os.umount("/data")
        except OSError:
            pass
        S["mounted"] = False
    fl = S["flash"]
    if fl is None:
        fl = flashdev.Flash(req.get("flash_size", flashdev.DATA_SIZE), path=req["image"])
        S["flash"] = fl
    fl.power_on()
    if "vfs_size" in req:
        # a small journal (tests of a full journal): the vfs partition sized explicitly
        parts = esp32.attach(fl, req["vfs_size"])
        try:
            fs = os.VfsLfs2(parts["vfs"])
        except OSError:
            os.VfsLfs2.mkfs(parts["vfs"])
            fs = os.VfsLfs2(parts["vfs"])
        os.mount(fs, "/data")
    else:
        simboot.mount_data(fl)
    S["mounted"] = True
    src = req.get("provision")
    if src:
        try:
            os.stat("/data/config.json")
        except OSError:
            for name in os.listdir(src):
                with open(src + "/" + name, "rb") as f:
                    data = f.read()
                with open("/data/" + name, "wb") as f:
                    f.write(data)
    part = esp32.Partition.find(esp32.Partition.TYPE_DATA, label="journal")
    S["v"] = None
    gc.collect()
    v = state.assemble(part[0] if part else None)
    S["v"] = v
    st = v.journal.status() if v.journal else None
    return {"faults": v.faults, "details": v.details,
            "journal": None if st is None else {"count": st.count, "unsent": st.unsent,
                                                "last_seq": st.last_seq}}


def decide(req):
    v = S["v"]
    p = v.pipeline
    fl = S["flash"]
    e0, b0, t0 = fl.erases, fl.prog_bytes, fl.time_us
    ch = record.QR if req["op"] == "qr" else record.NFC
    if p is None:       # as the loop does: refused (journaled) with the reason it is not ready
        d = v.refuse(ch, v.why_not_ready(), req["now"], req.get("clock_ok", True))
    elif ch == record.QR:
        d = p.decide_qr(req["text"].encode(), req["now"], req.get("clock_ok", True))
    else:
        d = p.decide_nfc(_hexb(req["payload"]), _hexb(req["challenge"]), req["now"],
                         req.get("clock_ok", True))
    out = d.summary(reasons.describe(d.reason))
    # what the tap cost the flash (the model's counters and datasheet time model)
    out["flash"] = {"erases": fl.erases - e0, "prog_bytes": fl.prog_bytes - b0,
                    "busy_us": fl.time_us - t0}
    return out


def records(req):
    # the oldest unsent records, like the depot reads them; with "ack" they are then
    # acknowledged, so the next request returns the next page
    j = S["v"].journal
    batch = j.unsent(limit=req.get("limit", 40))
    out = []
    for seq, t, payload in batch:
        r = record.decode(payload)
        out.append([seq, t, dict((str(k), _hexs(v) if isinstance(v, bytes) else v)
                                 for k, v in r.items())])
    if req.get("ack") and batch:
        j.ack(batch[-1][0])
    return {"records": out}


def _hexs(b):
    return "".join("%02x" % x for x in b)


def main():
    while True:
        line = sys.stdin.readline()
        if not line:
            return
        req = json.loads(line)
        op = req["op"]
        try:
            if op == "boot":
                ans = boot(req)
            elif op in ("qr", "nfc"):
                ans = decide(req)
                ans["ops"] = S["flash"].op_index
            elif op == "cut":
                fl = S["flash"]
                fl.arm_cut(fl.op_index + req["at"], req.get("seed", 1))
                ans = {"armed": fl.op_index + req["at"]}
            elif op == "checkpoint":
                # what the loop does in idle time: checkpoint the RAM state to files
                p = S["v"].pipeline
                n = 0
                while p.checkpoint_step(req.get("now", 0)):
                    n += 1
                ans = {"steps": n}
            elif op == "fill":
                # fill the journal with (rejected) tap records until it is full
                from journal import JournalFull
                w = record.RecordWriter()
                payload = bytes(w.encode(req["now"], 0, record.QR, record.REJECTED, 47))
                n = 0
                try:
                    while True:
                        S["v"].journal.append(payload, req["now"])
                        n += 1
                except JournalFull:
                    pass
                ans = {"appended": n, "full": S["v"].journal.status().full}
            elif op == "flash":
                fl = S["flash"]
                ans = {"erases": fl.erases, "prog_bytes": fl.prog_bytes, "busy_us": fl.time_us}
            elif op == "records":
                ans = records(req)
            elif op == "mem":
                gc.collect()
                ans = {"alloc": gc.mem_alloc(), "free": gc.mem_free()}
            else:
                ans = {"error": "unknown op " + op}
        except flashdev.PowerCut:
            S["v"] = None
            ans = {"cut": True}
        except Exception as e:  # noqa: BLE001 - report it to the test as one line
            buf = io.StringIO()
            sys.print_exception(e, buf)
            ans = {"error": buf.getvalue()}
        # a prefix: anything else the firmware prints (a finaliser's message...) is told apart
        print("@@J", json.dumps(ans))


main()
