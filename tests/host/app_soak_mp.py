# MicroPython: 1,000 taps in a row through the real decision core under a 128 KB heap
# (tests/host/test_app_soak.py writes the inputs). Only what a tap needs is imported -
# no boot code, no drivers - so the heap holds the tap path alone: the verifier, the
# stores on LittleFS, the journal on its raw partition of the flash model.
#
#   micropython -X heapsize=128K app_soak_mp.py <dir>
# <dir>: flash.img (created), trust.cbor, fares.cbor (bundle bodies), deny.bin (a signed
# deny bundle), config.json, taps.bin (fixed 800-byte records: <u32 now><u16 n><QR text>,
# read into one buffer like the scanner driver's: the harness makes no garbage of its own).
# Prints one JSON line: taps, answers by kind, seqs, heap after collection at checkpoints.
import gc
import json
import os
import struct
import sys

import esp32
import flashdev


def read(path):
    with open(path, "rb") as f:
        return f.read()


def main(d):
    rec = bytearray(800)   # the tap buffer first: it lives as long as the run
    mv = memoryview(rec)
    flash = flashdev.Flash(flashdev.DATA_SIZE, path=d + "/flash.img")
    parts = esp32.attach(flash)
    os.VfsLfs2.mkfs(parts["vfs"])
    os.mount(os.VfsLfs2(parts["vfs"]), "/data")
    with open("/data/deny.bin", "wb") as f:
        f.write(read(d + "/deny.bin"))
    # the flash model's buffers first, then the tap path's long-lived buffers (as
    # app/state.py does at boot), then the rest of its code, collecting between imports:
    # loading a module leaves garbage, and long-lived objects allocated among it (qstr
    # pools grow in blocks of several hundred bytes) cut the heap into holes too small for
    # the next big block. (The flash model is the simulator's, C on the ESP32.)
    from tokens import p256
    p256.init()
    from app.recent import RecentTaps
    recent = RecentTaps("/data/replay.bin")
    from app.allowance import AllowanceStore
    allowance = AllowanceStore("/data/allowance")
    gc.collect()
    from journal import Journal, JournalError, JournalFull
    j = Journal(parts["journal"])
    gc.collect()
    from app import record
    from app.decision import Pipeline
    gc.collect()
    from app.denylist import DenyList
    from app.fares import FareTable
    gc.collect()
    from tokens import cbor
    from tokens.trust import TrustStore
    gc.collect()
    from tokens.verify import TokenVerifier
    gc.collect()
    j.mount()
    cfg = json.loads(read(d + "/config.json"))
    ver = TokenVerifier(TrustStore.from_body(read(d + "/trust.cbor")), cfg["operator"],
                        qr_window=cfg["qr_window_s"])
    fares = FareTable.from_body(cbor.loads(read(d + "/fares.cbor")), 1)
    p = Pipeline(ver, fares, DenyList.open("/data/deny.bin"), recent.open(), allowance.open(),
                 j, (JournalFull, JournalError), cfg["passback_s"], cfg["qr_window_s"])
    counts = {"0/0": 0}
    # preallocated: a list growing during the run would itself look like heap growth
    heap = [0] * 64
    nh = 0
    seqs = 0
    last_seq = 0
    n = 0
    bad = []
    with open(d + "/taps.bin", "rb") as f:
        while True:
            if f.readinto(rec) != len(rec):
                break
            now, ln = struct.unpack_from("<IH", rec, 0)
            dd = p.decide_qr(mv[6:6 + ln], now, True)
            n += 1
            k = "%d/%d" % (dd.answer, dd.reason)
            counts[k] = counts.get(k, 0) + 1
            if dd.seq is None or dd.seq != last_seq + 1:
                if len(bad) < 10:
                    bad.append((n, dd.seq))
            else:
                last_seq = dd.seq
                seqs += 1
            dd = None
            if n % 50 == 0 and nh < len(heap):
                gc.collect()
                heap[nh] = gc.mem_alloc()
                nh += 1
    # every tap journaled once: read the journal back, page by page, like the depot
    seen = 0
    accepted = 0
    prev = 0
    while True:
        batch = j.unsent(limit=8, max_bytes=512)
        if not batch:
            break
        for seq, _t, payload in batch:
            if seq != prev + 1 and len(bad) < 10:
                bad.append(("gap", prev, seq))
            prev = seq
            r = record.decode(payload)
            seen += 1
            if r[record.T_ANSWER] == record.ACCEPTED:
                accepted += 1
        j.ack(batch[-1][0])
        batch = None
    print(json.dumps({"taps": n, "journaled": seqs, "records": seen, "accepted_records": accepted,
                      "answers": counts, "heap": heap[:nh], "bad": bad[:10],
                      "free_at_end": gc.mem_free()}))
    os.umount("/data")
    flash.close()


main(sys.argv[1])
