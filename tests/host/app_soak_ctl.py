# MicroPython: the controls of app_soak_mp.py's collection detector, imported by it in
# its guarded run only (so this code takes no room in the 128 KB run). Decisions on a heap
# filled with garbage must need a collection: with the collector on, the detector must
# count it; under the guard (gc.disable()) the decision must fail instead.
import gc
import struct

import micropython


def fill_heap():
    """Leave < 4 KB free, all of it taken by garbage (the collector would free it)."""
    n = 0
    while gc.mem_free() > 4096 and n < 100000:
        bytearray(64)           # dropped at once: garbage
        n += 1
    return n


def controls(p, f, rec, mv, slack):
    ctl = []
    for guard in (False, True):
        if f.readinto(rec) != len(rec):
            break
        now, ln = struct.unpack_from("<IH", rec, 0)
        gc.collect()
        fill_heap()
        a0 = gc.mem_alloc()
        c0 = micropython.mem_current()
        if guard:
            gc.disable()
        try:
            dd = p.decide_qr(mv[6:6 + ln], now, True)
        except MemoryError:
            dd = None
        a1 = gc.mem_alloc()
        c1 = micropython.mem_current()
        gc.enable()
        gap = (a1 - a0) - (c1 - c0)
        got = "MemoryError" if dd is None else "%d/%d" % (dd.answer, dd.reason)
        ctl.append({"guard": guard, "answer": got, "detected": gap < -slack})
        dd = None
    return ctl


def malformed(p, rec):
    """The last record's token with two more bytes inside it (three base45 characters
    inserted on a group boundary, so the base45 stays valid): the in-place scan does not
    take it, so the strict decoder is loaded now (first use) and gives the decoding
    reason, in a heap with room."""
    import sys
    before = "tokens.general" in sys.modules
    now, ln = struct.unpack_from("<IH", rec, 0)
    text = bytes(rec[6:6 + ln])
    cut = 5 + 3 * ((ln - 5) // 3)       # after "BRT1:", before a final partial group
    dd = p.decide_qr(text[:cut] + b"AAA" + text[cut:], now, True)
    return {"malformed": "%d/%d" % (dd.answer, dd.reason),
            "general_loaded": [before, "tokens.general" in sys.modules]}
