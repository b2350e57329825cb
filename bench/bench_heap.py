"""Heap of the whole validator (issue 14 item 5): live after boot and after 1,000 taps.

The simulator (`make sim`'s board): firmware/main.py unmodified in the MicroPython unix
port, drivers, tap loop, screen, depot client - everything the board runs. Phones tap by
NFC, 20 wallets in turn (more than the pass cache holds), time advanced 7 s per tap. The
figure is the validator's own @@STATUS `heap.used`, taken right after a gc.collect()
(firmware/app/screen.py): live objects only. Checkpoints every 100 taps show whether it
stays flat.

32 bits, MODELLED: objects on the 32-bit ESP32 take ~0.71-0.75 of the 64-bit unix port's
heap (DESIGN §2, measured on a 32-bit MicroPython with this firmware); the unix figure
also holds the virtual board's Python modules (machine, network, the flash model: C on the
ESP32), so the modelled 32-bit figure is an upper bound.
Also: bytes one decision allocates and collections inside decisions, from the soak
(tests/host/test_app_soak.py writes build/soak.json).
"""

import json
import pathlib
import tempfile
import time

from host import tokens as ht
from sim.launcher import SimBoard

N = 1000
EVERY = 100
WALLETS = 20
F32 = (0.71, 0.75)
SOAK = pathlib.Path(__file__).resolve().parents[1] / "build" / "soak.json"


def _used(b, settle=1.5):
    time.sleep(settle)          # the next @@STATUS (every second) after the last answer
    return b.status.get("heap", {}).get("used")


def measure(tmp):
    b = SimBoard(tmp / "sim")
    b.start()
    try:
        boot = _used(b)
        now = b.now()
        ws = []
        for i in range(WALLETS):
            phone = ht.generate_key()
            ws.append((phone, ht.mint_pass(b.world.keys["issuer"], phone, b"hp%02d" % i,
                                           b"Php%02d" % i, i % 2, 10 ** 9, now - 86400,
                                           now + 86400 * 30)))
        marks, faults, n = [], 0, 0
        counter = [0]
        while n < N:
            phone, p = ws[n % WALLETS]
            b.advance(7)

            def answer(ch, phone=phone, p=p):
                counter[0] += 1
                return ht.nfc_payload(p, ht.make_proof(p, phone, b.now(), counter[0], ch))
            d = b.tap_phone(answer)
            if d["reason"] == 47:       # reader fault: the rider taps again (counted)
                faults += 1
                continue
            assert d["answer"] == 0, d
            n += 1
            if n % EVERY == 0:
                marks.append(_used(b))
        return boot, marks, faults
    finally:
        b.stop()


def run():
    with tempfile.TemporaryDirectory() as td:
        boot, marks, faults = measure(pathlib.Path(td))
    after = marks[-1]
    steady = marks[1:]
    rows = []
    for name, v in (("after boot", boot), ("after %d taps" % N, after)):
        rows.append({"name": "whole validator, live heap %s (unix port)" % name,
                     "value": round(v / 1024, 1), "unit": "KiB",
                     "note": "simulator, @@STATUS heap.used after gc.collect(); firmware + "
                     "virtual board modules (C on the ESP32)"})
        rows.append({"name": "whole validator, live heap %s (32-bit, MODELLED)" % name,
                     "value": round(v * F32[1] / 1024, 1), "unit": "KiB",
                     "note": "unix figure x%.2f-%.2f (DESIGN §2): %.1f-%.1f KiB; upper bound "
                     "(includes the virtual board's modules)"
                     % (F32[0], F32[1], v * F32[0] / 1024, v * F32[1] / 1024)})
    rows.append({"name": "whole validator, heap growth over taps %d..%d" % (EVERY * 2, N),
                 "value": round((max(steady) - min(steady)) / 1024, 2), "unit": "KiB",
                 "note": "max - min of the live heap every %d taps after the first %d "
                 "(flat = 0); checkpoints %s; %d NFC reader faults retried"
                 % (EVERY, EVERY, [round(m / 1024, 1) for m in marks], faults)})
    try:
        soak = json.loads(SOAK.read_text())
    except (OSError, ValueError):
        soak = {}
    for heap, s in sorted(soak.items()):
        rows.append({"name": "decision core: bytes requested per tap (%s heap)" % heap,
                     "value": s["alloc_per_tap_median"], "unit": "B",
                     "note": "median of %d taps, max %d; micropython.mem_total() around each "
                     "decision (call frames freed on return included); %d decisions with a "
                     "collection inside (tests/host/test_app_soak.py, last make test)"
                     % (s["taps"], s["alloc_per_tap_max"], s["collections_inside_decisions"])})
        if "garbage_per_tap_median" in s:
            rows.append({"name": "decision core: garbage per tap (%s heap)" % heap,
                         "value": s["garbage_per_tap_median"], "unit": "B",
                         "note": "median of %d taps, max %d; gc.mem_alloc() growth with "
                         "collection off (issue 14: <= 4 KB)" % (s["taps"],
                                                                 s["garbage_per_tap_max"])})
    return rows


if __name__ == "__main__":
    for r in run():
        print(r)
