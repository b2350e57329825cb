# MicroPython worker for the validator's host tests (tests/host/test_app_*.py): the real
# decision core - app.state.assemble (config, signed bundles, stores, journal) and the
# Pipeline - on the flash model, driven one JSON request per stdin line, one "@@J {json}"
# answer line (sim/vboard/mpserve.py; tests/host/app_support.py reads them). Runs with
# MICROPYPATH=firmware:sim/vboard.
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
import os

import esp32
import flashdev
import simboot
from app import reasons, record, state
from app.summary import summary
from mpserve import serve

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
    out = summary(d, reasons.describe(d.reason))
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


def qr_nfc(req):
    ans = decide(req)
    ans["ops"] = S["flash"].op_index
    return ans


def cut(req):
    fl = S["flash"]
    fl.arm_cut(fl.op_index + req["at"], req.get("seed", 1))
    return {"armed": fl.op_index + req["at"]}


def checkpoint(req):
    # what the loop does in idle time: checkpoint the RAM state to files
    p = S["v"].pipeline
    n = 0
    while p.checkpoint_step(req.get("now", 0)):
        n += 1
    return {"steps": n}


def fill(req):
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
    return {"appended": n, "full": S["v"].journal.status().full}


def flash(req):
    fl = S["flash"]
    return {"erases": fl.erases, "prog_bytes": fl.prog_bytes, "busy_us": fl.time_us}


def mem(req):
    gc.collect()
    return {"alloc": gc.mem_alloc(), "free": gc.mem_free()}


def power_cut():
    S["v"] = None      # RAM state is gone, as on a real board: the next request boots
    return {"cut": True}


serve({"boot": boot, "qr": qr_nfc, "nfc": qr_nfc, "cut": cut, "checkpoint": checkpoint,
       "fill": fill, "flash": flash, "records": records, "mem": mem}, power_cut)
