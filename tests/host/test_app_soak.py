"""1,000 taps in a row under MicroPython with a small heap (DECISION_HEAP): no growth
of the heap in use after collection, and every tap journaled exactly once. And memory on
PSRAM (issue 14): the heap collected between taps, each decision's allocation measured,
and no collection inside a decision where the heap has room (tests/host/app_soak_mp.py
explains how collections are counted and ruled out).

Real tokens (host/tokens), the firmware verifier, the app's stores on LittleFS and the
journal on the flash model; the decision core runs without the boot code and drivers,
compiled to .mpy as on the board (tools/build_firmware.py). Twenty wallets take turns,
more than the pass cache holds, so every tap checks both signatures (the worst case, and a
bus's usual one). The heap holds the tap path's code and tables and the simulator's flash
model and esp32 shim (Python here, C on the ESP32): ~119.5 KB in use after a collection
on this 64-bit port, and each decision's call frames and garbage fit in the rest of 128K
(at 126K too; at 124K decisions collect).

History: 128K while the board was a WROOM-32; the decision core then grew to need 152K
(the viper engine's G tables and registers, the token's fast path). On 2026-12-05 it came
back under 128K (142.6 -> ~119.5 KB after a collection): the strict decoder
(tokens/general.py and tokens/cbor.py) is loaded by the first token not in the usual form
instead of at boot; the key code (tokens/p256_keys.py), the trust-list and fare-table
parsers, the reason names and record decoding are boot, log and depot code loaded on first
use; G's window 7 -> 6 (tables 8 -> 4 KB); the soak no longer
loads the simulator's time and os shims (the board's are C) and names modules as the
board's build does (short paths: MicroPython interns every module's file name). Bars: at
128K, every tap accepted and journaled once, no heap growth, and 0 collections inside
decisions (`make bench`, group tap, prints the smallest heap in 4 KiB steps;
docs/validator.md 'Memory').
"""

import json
import pathlib
import shutil
import statistics
import struct

import pytest

from host import bundles as hb
from host import tokens as ht
from host.provisioning import parttable
from tools import build_firmware
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
    """The firmware as the board gets it (tools/build_firmware.py: every module through
    mpy-cross, each named by its path in the tree), compiled for the unix port (x64) where
    the ESP32's is for xtensawin: importing .mpy needs no compiler on the heap, which from
    source takes more than 128 KB for this import set. (The flash model, sim-only, stays
    source.)"""
    build_firmware.build(ROOT / "firmware", out, "x64")
    return out


# the simulator's board modules the soak needs: the flash model and the esp32 shim that
# serves its partitions (C on the ESP32). Not the simulator's time and os shims (its clock
# and urandom models, ~4 KB of heap): the decision core takes its time as an argument, and
# the unix port's own time and os are C, as the board's are.
VBOARD = ("flashdev.py", "esp32.py", "parttable.py")


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
    (tmp_path / "vboard").mkdir(exist_ok=True)
    for name in VBOARD:
        shutil.copyfile(ROOT / "sim" / "vboard" / name, tmp_path / "vboard" / name)


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
    r = run_soak(d, heap, guard)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr
    lines = r.stdout.strip().splitlines()
    # per decision: (bytes requested, heap growth: what it left for the collector)
    per = [(int(x.split()[1]), int(x.split()[3])) for x in lines if x.startswith("A ")]
    return json.loads(lines[-1]), per


def run_soak(d, heap, guard=False, timeout=600):
    """tests/host/app_soak_mp.py on the inputs in d, run from d with the firmware in lib/:
    MicroPython interns each module's file name for good, so the path is kept as short as
    the board's /lib/... rather than the test's temporary directory."""
    return run_mp([str(ROOT / "tests" / "host" / "app_soak_mp.py"), "."] + (["guard"] if guard else []),
                  heap=heap, firmware=pathlib.Path("lib"), paths=[d / "vboard", "tests/host"],
                  cwd=str(d), timeout=timeout)


def _report(key, out, per):
    REPORT.parent.mkdir(exist_ok=True)
    try:
        rep = json.loads(REPORT.read_text())
    except (OSError, ValueError):
        rep = {}
    # only the budgets this file runs (a figure from an earlier budget would be stale)
    rep = {k: v for k, v in rep.items() if k in (DECISION_HEAP, ROOMY_HEAP)}
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


DECISION_HEAP = "128K"   # the decision core's budget (see the module's docstring)


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
    # issue 14: in this budget too, no decision needed a collection (the loop's collection
    # between taps left room for each one's call frames and garbage)
    assert out["inside"] == 0 and out["min_gap"] >= -1024, out
    # the strict decoder, the key code, names and record decoding: not loaded by valid taps
    assert out["lazy_loaded"] == [], out["lazy_loaded"]
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
    c_on, c_guard, c_bad = out["controls"]
    # and the first malformed token loads the strict decoder and gets a decoding reason
    # (MALFORMED or BAD_CBOR, not INTERNAL: the import found room)
    assert c_bad["malformed"] in ("1/1", "1/5") and c_bad["general_loaded"] == [False, True], c_bad
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
