"""Tap figures (issue 6): tap-to-answer time by stage, heap, flash per tap, ESP32 estimate.

A. The simulator (`make sim`'s board): firmware/main.py unmodified in the MicroPython unix
   port on the virtual board; phones tap by NFC (the virtual PN532 at 115200 baud) and show
   QR codes (the virtual GM65 at 9600 baud). Stage times are the firmware's own
   time.ticks_us() figures from its @@TAP lines: read (reader exchange), decode, verify
   (signatures), checks (replay, deny list, passback, allowance, fare), journal (append),
   answer (OLED + lights). Median and p99 (nearest rank) over 200 taps per set. For QR,
   "read" is only the poll that completed the line: the scanner's own wire time (9600
   baud, ~0.45 s for a 430-character code) passes while the loop does other work.
B. The decision core in MicroPython on the flash model (tests/host/app_worker_mp.py):
   what each accepted tap costs the flash (the model's counters and datasheet time model),
   and what an idle-time checkpoint costs.
C. Heap: in use after a collection at idle in the simulator; and the smallest -X heapsize
   with which 60 taps of the decision core alone (compiled .mpy) all succeed.
D. The ESP32 tap budget is `make model`'s (tools/model/tap.py: the verifier is viper
   machine code, counted from the xtensawin code, not a unix-port time x a factor).
"""

import json
import pathlib
import statistics
import tempfile

from host import tokens as ht
from sim.launcher import SimBoard
from tests.host.app_support import NOW, Board

STAGES = ("read", "decode", "verify", "checks", "journal", "answer")
N = 200


def _pct(v, p):
    v = sorted(v)
    return v[max(0, min(len(v) - 1, int(round(p / 100 * len(v) + 0.5)) - 1))]


def _wallets(world, n, tag):
    out = []
    for i in range(n):
        phone = ht.generate_key()
        p = ht.mint_pass(world.keys["issuer"], phone, b"%s%02d" % (tag, i), b"P%s%02d" % (tag, i),
                         i % 2, 100_000_000, world_now() - 86400, world_now() + 86400 * 6)
        out.append((phone, p))
    return out


def world_now():
    import time
    return int(time.time())


def _sim_sets(tmp):
    b = SimBoard(tmp / "sim")
    b.start()
    sets = {}
    heap = {}
    try:
        heap["ready"] = b.status.get("heap", {}).get("used")
        counter = [0]
        faults = [0]

        def nfc_set(wallets, step):
            out = []
            for k in range(N):
                phone, p = wallets[k % len(wallets)]
                b.advance(step)

                def answer(ch, phone=phone, p=p):
                    counter[0] += 1
                    return ht.nfc_payload(p, ht.make_proof(p, phone, b.now(), counter[0], ch))
                d = b.tap_phone(answer)
                if d["reason"] == 47:      # reader fault (the rider taps again): counted
                    faults[0] += 1
                    d = b.tap_phone(answer)
                assert d["answer"] == 0, d
                out.append(d)
            return out

        def qr_set(wallets, step):
            out = []
            for k in range(N):
                phone, p = wallets[k % len(wallets)]
                b.advance(step)
                counter[0] += 1
                d = b.scan(ht.qr_text(p, ht.make_proof(p, phone, b.now(), counter[0])))
                assert d["answer"] == 0, d
                out.append(d)
            return out

        # cache of 16 passes: 12 wallets stay cached, 40 never are
        sets["NFC, pass cached"] = nfc_set(_wallets(b.world, 12, b"nc"), 6)
        sets["NFC, pass not cached"] = nfc_set(_wallets(b.world, 40, b"nu"), 2)
        sets["QR, pass cached"] = qr_set(_wallets(b.world, 12, b"qc"), 6)
        import time
        time.sleep(1.5)
        heap["after"] = b.status.get("heap", {}).get("used")
        heap["reader_faults"] = faults[0]
    finally:
        b.stop()
    return sets, heap


def _flash_costs(tmp):
    from sim.world import World
    w = World.load_or_create(tmp / "w")
    bd = Board(tmp, w)
    try:
        bd.boot()
        ws = []
        for i in range(10):
            ph = ht.generate_key()
            ws.append((ph, ht.mint_pass(w.keys["issuer"], ph, b"fc-w%02d" % i, b"fc-p%02d" % i,
                                        0, 10 ** 8, NOW - 86400, NOW + 86400 * 5)))
        taps = []
        for k in range(N):
            ph, p = ws[k % 10]
            t = NOW + k * 7
            d = bd.qr(ht.qr_text(p, ht.make_proof(p, ph, t, k + 1)), t)
            assert d["answer"] == 0, d
            taps.append(d["flash"])
        # one checkpoint of the 10 sums + ring, through the worker's counters
        before = bd.ask(op="flash")
        steps = bd.ask(op="checkpoint", now=NOW + N * 7)["steps"]
        after = bd.ask(op="flash")
        cp = {k: after[k] - before[k] for k in after}
        cp["steps"] = steps
        return taps, cp
    finally:
        bd.close()


def _min_heap(tmp):
    from host.provisioning import parttable
    from tests.host.test_app_soak import CONTROLS, prepare, run_soak
    prepare(tmp, n_taps=60 + CONTROLS)
    ok = None
    for kb in range(104, 321, 4):
        (tmp / "flash.img").unlink(missing_ok=True)
        parttable.write_image(tmp / "flash.img")   # the board's 16 MB chip and its table
        r = run_soak(tmp, "%dK" % kb, timeout=300)
        if r.returncode == 0:
            out = json.loads(r.stdout.strip().splitlines()[-1])
            if out["answers"] == {"0/0": 60}:
                ok = (kb, out["heap"][-1] if out["heap"] else None)
                break
    return ok


def run():
    rows = []
    with tempfile.TemporaryDirectory() as td:
        tmp = pathlib.Path(td)
        sets, heap = _sim_sets(tmp)
        (tmp / "fc").mkdir()
        taps, cp = _flash_costs(tmp / "fc")
        (tmp / "mh").mkdir()
        mh = _min_heap(tmp / "mh")
    flash_us = [f["busy_us"] for f in taps]
    flash_med = statistics.median(flash_us) / 1000
    for name, ds in sets.items():
        cached = sum(1 for d in ds if d["cached"])
        per = {s: [d["ms"][s] for d in ds] for s in STAGES}
        tot = [sum(d["ms"][s] for s in STAGES) for d in ds]
        for s in STAGES:
            rows.append({"name": "%s: %s" % (name, s), "value": round(statistics.median(per[s]), 3),
                         "unit": "ms", "note": "median of %d; p99 %.3f" % (len(ds), _pct(per[s], 99))})
        rows.append({"name": "%s: tap to answer" % name,
                     "value": round(statistics.median(tot), 2), "unit": "ms",
                     "note": "sim, sum of stages, median of %d; p99 %.2f; %d/%d pass cached%s"
                     % (len(ds), _pct(tot, 99), cached, len(ds),
                        "; %d NFC reader faults retried (all sets)" % heap["reader_faults"]
                        if heap.get("reader_faults") and name.startswith("NFC, pass n") else "")})
    # the ESP32 tap budget is modelled by `make model` (tools/model/tap.py): the verify stage
    # is machine code there, which no unix-port time x factor can stand for
    rows.append({"name": "ESP32 tap budget", "value": "make model", "unit": "",
                 "note": "MODELLED end to end in build/model.json (tap_*_ms); docs/validator.md"})
    rows.append({"name": "flash per accepted tap: erases", "value": statistics.median(
        [f["erases"] for f in taps]), "unit": "", "note": "median of %d; max %d (a journal "
        "sector opened without idle-time maintain)" % (len(taps), max(f["erases"] for f in taps))})
    rows.append({"name": "flash per accepted tap: bytes programmed", "value": statistics.median(
        [f["prog_bytes"] for f in taps]), "unit": "B", "note": "median; journal record only "
        "(the replay ring and allowance sums are checkpointed in idle time)"})
    rows.append({"name": "flash per accepted tap: modelled busy", "value": round(flash_med, 2),
                 "unit": "ms", "note": "flash model (45 ms erase, 0.7 ms page); p99 %.1f, max %.1f"
                 % (_pct(flash_us, 99) / 1000, max(flash_us) / 1000)})
    rows.append({"name": "idle checkpoint (10 sums + ring): modelled busy",
                 "value": round(cp["busy_us"] / 1000, 1), "unit": "ms",
                 "note": "%d LittleFS writes, %d erases; between taps, never on the tap path"
                 % (cp["steps"], cp["erases"])})
    rows.append({"name": "heap in use at idle, simulator (firmware + vboard)",
                 "value": round((heap.get("after") or 0) / 1024, 1), "unit": "KiB",
                 "note": "after collection, after 600 taps (%.1f KiB at boot); the S3 heap is PSRAM"
                 % ((heap.get("ready") or 0) / 1024)})
    if mh is not None:
        rows.append({"name": "smallest heap for the decision core (60 taps, 20 wallets)",
                     "value": mh[0],
                     "unit": "KiB", "note": "-X heapsize, 4 KiB steps, .mpy build, flash model "
                     "(Python here, C on the ESP32) included; %.1f KiB in use after collection"
                     % ((mh[1] or 0) / 1024)})
    return rows


if __name__ == "__main__":
    for r in run():
        print(r)
