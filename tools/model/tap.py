"""The tap budget, modelled end to end (issue 14 item 4): NFC and QR, pass cached and not.

Every figure is MODELLED (no board here; DESIGN §2), stage by stage:
  read     the wire: NFC = the PN532's UART exchange at 460800 baud (board.py switches it
           with SetSerialBaudRate) + the RF exchange with the phone at 106 kbit/s (no phone
           time), QR = the scanner's line at 115200 baud (the driver switches the GM65);
           byte counts from bench/bench_wire.py's real exchanges on the virtual chips
  decode   the decision core's own stage time on the unix port (app_worker_mp.py: real boot
           path, flash model) x170 (typical bytecode)
  verify   the P-256 cost model (tools/model: machine code x CPI 1.3 at 240 MHz + its
           bytecode x170): proof signature (a new key) every tap, plus on a pass-cache miss
           the pass signature (a prepared issuer key) and the cnf key's y (the engine's
           DECOMP and NEGY programs); plus the rest of the stage's bytecode (claims, hashes,
           COSE, the calls) x170, timed in token checks with the engine's calls timed
           apart in the same process
  checks   replay, deny list, anti-passback, allowance, fare: unix time x170
  journal  the firmware's append on a RAM partition (its bytecode; the simulator's flash
           model is Python here but C on the board, so it is left out) x170, plus the
           flash's programming, 0.7 ms a page touched (W25Q-class datasheet, as the flash
           model); sector erases happen ahead, between taps (docs/journal.md)
  answer   lights (GPIO: nothing) and the OLED frame over I2C at 400 kHz (~23 ms)
The bytecode stages do the same work on every tap of a set, so their unix-port median is
used for p50 and p99 alike (the spread of their times on this shared machine is its noise,
not the board's); what does vary with the data -- the engine's operation counts (p99 of
random signatures) and the pages an append programs -- is taken at its p50 or p99. p99 is
the sum of those p99s: an upper bound.
"""

import pathlib
import tempfile

OLED_MS = 1030 * 9 / 400000 * 1000     # 1024 B frame + window commands, 9 bits a byte
F_TYPICAL = 170


def _pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, int(q * len(v)))]


def _wire():
    from bench import bench_wire
    rows = {r["name"]: r["value"] for r in bench_wire.run()}
    return {"nfc": rows["NFC tap: UART wire time @460800 (board)"] +
            rows["NFC tap: RF time @106k (estimate)"],
            "qr": rows["QR scan: wire time @115200"]}


JOURNAL_MP = r"""
import sys, time, gc
from journal import Journal
class Ram:
    def __init__(self, n):
        self.b = bytearray(b"\xff" * (4096 * n)); self.n = n
    def readblocks(self, blk, buf, off=0):
        o = blk * 4096 + off; buf[:] = self.b[o:o + len(buf)]
    def writeblocks(self, blk, buf, off=0):
        o = blk * 4096 + off; self.b[o:o + len(buf)] = buf
    def ioctl(self, op, arg):
        if op == 4: return self.n
        if op == 5: return 4096
        if op == 6:
            self.b[arg * 4096:(arg + 1) * 4096] = b"\xff" * 4096; return 0
        return 0
j = Journal(Ram(64)); j.mount()
payload = bytes(70)
ts, pages = [], []
for i in range(400):
    j.maintain()
    gc.collect()
    w0 = j._wpos
    t0 = time.ticks_us(); j.append(payload, 1000 + i); dt = time.ticks_diff(time.ticks_us(), t0)
    k = j._wpos - w0 if j._wpos > w0 else j._wpos
    a = w0 if j._wpos > w0 else 0
    ts.append(dt); pages.append((a + k - 1) // 256 - a // 256 + 1)
ts.sort(); pages.sort()
print(ts[len(ts) // 2], pages[len(pages) // 2], pages[int(0.99 * len(pages))])
"""
PAGE_MS = 0.7

# the verify stage's own bytecode (claims, hashes, COSE, the calls): token checks timed with
# the engine's calls timed apart, in one process (so the same load affects both)
VERIFY_MP = r"""
import sys, time, json
from binascii import unhexlify
import p256_engine as eng
from tokens import p256
from tokens.trust import TrustStore
from tokens.verify import TokenVerifier
d = json.load(open(sys.argv[1]))
v = TokenVerifier(TrustStore.from_body(unhexlify(d["trust"])), d["operator"])
spent = [0]
def timed(f):
    def g(*a):
        t0 = time.ticks_us(); r = f(*a); spent[0] += time.ticks_diff(time.ticks_us(), t0)
        return r
    return g
p256._run = timed(eng.run); p256._inv_eng = timed(eng.inv); p256._wnaf_eng = timed(eng.wnaf)
out = {}
for name in ("nfc_uncached", "nfc_cached", "qr_uncached", "qr_cached"):
    rest = []
    for i, tok in enumerate(d[name]):
        if name.endswith("uncached"):
            v.cache.clear()
        spent[0] = 0
        t0 = time.ticks_us()
        if name.startswith("qr"):
            r = v.check_qr(tok.encode(), d["now"], True)
        else:
            r = v.check_nfc(unhexlify(tok), unhexlify(d["challenge"]), d["now"], True)
        total = time.ticks_diff(time.ticks_us(), t0)
        assert r.ok, r
        if i:   # the first check of a set warms up
            rest.append(total - r.us_decode - spent[0])
    rest.sort()
    out[name] = rest[len(rest) // 2]
print(json.dumps(out))
"""


def _verify_rest(n=15):
    """{set: median us} of the verify stage's bytecode (not the engine, not the decode)."""
    import json
    import host.tokens as T
    from tests.host.tok_support import CHALLENGE, NOW, PHONE, mint, nfc, qr, trust_body
    from tests.support.mp import run_mp
    p = mint()
    fresh = [mint(wallet=b"WALLET%02d" % i, pass_id=b"PASS%04d" % i) for i in range(n)]
    data = {"trust": trust_body().hex(), "operator": "TSM", "now": NOW,
            "challenge": CHALLENGE.hex(),
            "qr_cached": [qr(p, counter=i + 1) for i in range(n)],
            "qr_uncached": [qr(f) for f in fresh],
            "nfc_cached": [nfc(p, counter=i + 1).hex() for i in range(n)],
            "nfc_uncached": [nfc(f).hex() for f in fresh]}
    del T, PHONE
    with tempfile.TemporaryDirectory() as tmp:
        f = pathlib.Path(tmp) / "v.py"
        f.write_text(VERIFY_MP)
        j = pathlib.Path(tmp) / "d.json"
        j.write_text(json.dumps(data))
        r = run_mp([str(f), str(j)], heap="1M")
    if r.returncode:
        raise RuntimeError("verify timing failed: " + (r.stdout + r.stderr)[-300:])
    return json.loads(r.stdout.strip().splitlines()[-1])


def _journal():
    """(median, p99) ms of an append: bytecode x170 + pages programmed x 0.7 ms."""
    from tests.support.mp import run_mp
    with tempfile.TemporaryDirectory() as tmp:
        f = pathlib.Path(tmp) / "j.py"
        f.write_text(JOURNAL_MP)
        r = run_mp([str(f)], heap="1M")
    if r.returncode:
        raise RuntimeError("journal timing failed: " + (r.stdout + r.stderr)[-300:])
    med, pg50, pg99 = (int(x) for x in r.stdout.split())
    return (med / 1000 * F_TYPICAL + pg50 * PAGE_MS, med / 1000 * F_TYPICAL + pg99 * PAGE_MS)


def _core_stages(n):
    """Unix-port stage times (ms) and flash busy time per tap, for the four sets."""
    from host import tokens as ht
    from sim.world import World
    from tests.host.app_support import NOW, Board
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        w = World.load_or_create(tmp / "w")
        bd = Board(tmp, w)
        try:
            bd.boot()
            for label, cached in (("uncached", False), ("cached", True)):
                for ch in ("nfc", "qr"):
                    rows = []
                    phone = p = None
                    for i in range(n):
                        tag = b"%s%s%02d" % (ch.encode(), label[:1].encode(), i if not cached else 0)
                        if not cached or i == 0:   # cached: one wallet taps again and again
                            phone = ht.generate_key()
                            p = ht.mint_pass(w.keys["issuer"], phone, tag, b"P" + tag, 0,
                                             100_000_000, NOW - 86400, NOW + 86400 * 6)
                        now = NOW + 120 * (len(out) * n + i + 1)   # past anti-passback
                        bd.ask(op="mem")   # a collection between taps, as the loop does
                        if ch == "qr":
                            d = bd.qr(ht.qr_text(p, ht.make_proof(p, phone, now, i + 1)), now=now)
                        else:
                            chal = bytes(16)
                            d = bd.ask(op="nfc", now=now, challenge=chal.hex(), payload=ht.nfc_payload(
                                p, ht.make_proof(p, phone, now, i + 1, chal)).hex())
                        if d["answer"] != 0 or (cached and i and not d["cached"]):
                            continue
                        rows.append((d["ms"], d["flash"]["busy_us"] / 1000))
                    out[(ch, label)] = rows
        finally:
            bd.close()
    return out


def model(verify, n=40):
    """{key: ms} of the tap budget; verify: tools.model's result (verify figures, DECOMP)."""
    wire = _wire()
    core = _core_stages(n)
    jn = _journal()
    vrest = _verify_rest()
    # the cnf key's y: DECOMP (curve equation + root), and NEGY for half the keys: counted
    # every time (an upper bound)
    sqrt_ms = (verify["program_instructions"]["DECOMP"] +
               verify["program_instructions"]["NEGY"]) * 1.3 / 240e3
    res = {"wire_ms": wire}
    for (ch, label), rows in core.items():
        if not rows:
            continue
        vk = verify["verify_new_key"]
        vp = verify["verify_prepared"]
        for tag in ("p50", "p99"):
            qn = "p99" if tag == "p99" else "p50"
            v_ms = vk["ms_cpi1.3_x170_" + qn]
            if label == "uncached":
                v_ms += vp["ms_cpi1.3_x170_" + qn] + sqrt_ms
            stage = {
                "read": wire[ch],
                "decode": _pct([r[0]["decode"] for r in rows], 0.5) * F_TYPICAL,
                "verify": v_ms + vrest["%s_%s" % (ch, label)] / 1000 * F_TYPICAL,
                "checks": _pct([r[0]["checks"] for r in rows], 0.5) * F_TYPICAL,
                "journal": jn[0] if tag == "p50" else jn[1],
                "answer": OLED_MS,
            }
            key = "tap_%s_%s_%s_ms" % (ch, label, tag)
            res[key] = round(sum(stage.values()), 1)
            res[key.replace("_ms", "_stages")] = {k: round(v, 1) for k, v in stage.items()}
    res["taps_per_set"] = {"%s %s" % k: len(v) for k, v in core.items()}
    return res


