# MicroPython: 1,000 taps in a row through the real decision core (tests/host/
# test_app_soak.py writes the inputs). Only what a tap needs is imported - no boot code,
# no drivers - so the heap holds the tap path alone: the verifier, the stores on LittleFS,
# the journal on its raw partition of the flash model (the board's 16 MB chip with the
# validator's partition table).
#
#   micropython -X heapsize=128K app_soak_mp.py <dir> [guard]
# <dir>: flash.img (16 MB, with its table), trust.cbor, fares.cbor (bundle bodies),
# deny.bin (a signed deny bundle), config.json, taps.bin (fixed 800-byte records: <u32 now>
# <u16 n><QR text>, read into one buffer like the scanner driver's: the harness makes no
# garbage of its own). The last CONTROLS records are the detector's controls (below).
# Prints "A <bytes requested> <gap> <heap growth>" per decision, then one JSON line: taps, answers by
# kind, seqs, heap after collection at checkpoints, collections counted inside decisions,
# the controls.
#
# Memory on PSRAM (DESIGN §2, issue 14): the heap is collected BETWEEN taps - as
# firmware/app/loop.py does after every answer - and each decision is measured:
# - bytes requested: micropython.mem_total() before and after (MICROPY_MEM_STATS: every
#   byte the runtime requested, whether or not it was freed or collected since - with the
#   call frames MicroPython puts on the heap and frees on return, py/objfun.c);
# - heap growth: gc.mem_alloc() before and after - under the guard, what the decision
#   leaves behind for the collector (its garbage), the figure issue 14's 4 KB is about;
# - collections inside the decision: a collection frees blocks without m_free(), so
#   mem_current() (kept by m_malloc/m_free/m_realloc, never by the sweep) still counts
#   what it freed while gc.mem_alloc() (blocks in use) no longer does. Without a
#   collection the blocks in use grow at least as much as mem_current (blocks round sizes
#   up); so a decision whose mem_alloc delta falls more than SLACK below its mem_current
#   delta had a collection inside it;
# - with `guard`, automatic collection is OFF during each decision (gc.disable(): py/gc.c
#   then never collects, an allocation that finds no room raises MemoryError instead), so
#   a decision that needed a collection cannot pass unnoticed: it fails. Every decision
#   accepted under the guard is a decision that ran without one.
# Controls (after the run): a decision on a heap filled with garbage, collector on - the
# detector must count its collection; and the same under the guard - it must fail.
import gc
import json
import os
import struct
import sys

import micropython

import esp32
import flashdev
from unload import forget

SLACK = 1024      # bytes: rounding of objects freed during the decision (see above)
LAZY = ("tokens.general", "tokens.cbor", "tokens.p256_keys", "tokens.reason_names",
        "app.reason_names", "app.record_decode", "app.summary")
CONTROLS = 2


def main(d, guard):
    rec = bytearray(800)   # the tap buffer first: it lives as long as the run
    mv = memoryview(rec)
    img = d + "/flash.img"
    flash = flashdev.Flash(os.stat(img)[6], path=img)  # the test made the 16 MB image
    parts = esp32.attach(flash)
    gc.collect()  # reading the partition table left garbage: not under what comes next
    # the decision core built by app_soak_setup.py, whose code then goes: only the tap
    # loop's stays (the board's boot code is forgotten the same way, firmware/unload.py)
    from app_soak_setup import build
    p, j, into = build(d, parts)
    build = None
    forget("app_soak_setup")
    gc.collect()
    counts = {"0/0": 0}
    # preallocated: a list growing during the run would itself look like heap growth
    heap = [0] * 64
    nh = 0
    inside = 0              # decisions with a collection inside (detector)
    min_gap = 0
    seqs = 0
    last_seq = 0
    n = 0
    bad = []
    size = os.stat(d + "/taps.bin")[6] // len(rec) - CONTROLS
    f = open(d + "/taps.bin", "rb")
    while n < size:
        if f.readinto(rec) != len(rec):
            break
        now, ln = struct.unpack_from("<IH", rec, 0)
        gc.collect()        # between taps (firmware/app/loop.py, after each answer)
        a0 = gc.mem_alloc()
        c0 = micropython.mem_current()
        t0 = micropython.mem_total()
        if guard:
            gc.disable()
        dd = p.decide_qr(mv[6:6 + ln], now, True, into)
        t1 = micropython.mem_total()
        c1 = micropython.mem_current()
        a1 = gc.mem_alloc()
        gc.enable()
        gap = (a1 - a0) - (c1 - c0)
        if gap < -SLACK:
            inside += 1
        if gap < min_gap:
            min_gap = gap
        # one line per decision, printed after it (its garbage goes with the next collect):
        # bytes requested, the detector's gap, and the heap's growth - what the decision
        # left for the collector (exact under the guard, where nothing is collected)
        print("A", t1 - t0, gap, a1 - a0)
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
    # what a valid tap never runs was never loaded (first use only: docs/validator.md)
    lazy = [m for m in LAZY if m in sys.modules]
    # every tap journaled once: read the journal back, page by page, like the depot (the
    # reading code is loaded now: without the controls to run, the decision core goes)
    if not guard:
        p = into = None
    gc.collect()
    from app_soak_read import read_back
    seen, accepted = read_back(j, bad)
    # the detector's controls (only in the roomy, guarded run: their code is not loaded
    # into the 128 KB one)
    ctl = []
    if guard:
        from app_soak_ctl import controls, malformed
        ctl = controls(p, f, rec, mv, SLACK)
        ctl.append(malformed(p, rec))
    f.close()
    print(json.dumps({"taps": n, "journaled": seqs, "records": seen, "accepted_records": accepted,
                      "answers": counts, "heap": heap[:nh], "bad": bad[:10],
                      "free_at_end": gc.mem_free(), "guard": guard, "inside": inside,
                      "min_gap": min_gap, "lazy_loaded": lazy,
                      "controls": ctl}))
    os.umount("/data")
    flash.close()


main(sys.argv[1], len(sys.argv) > 2 and sys.argv[2] == "guard")
