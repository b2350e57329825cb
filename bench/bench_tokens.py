"""Token verification figures (issues 3, 12): ES256 under MicroPython -- the viper engine
and the bignum verifier it replaced (tests/firmware/p256_ref.py, now the tests' oracle),
paired on the same keys in the same process -- beside `cryptography` under CPython in the
same run; bytes allocated per verify; a full token check with the pass cached and uncached;
token sizes and QR versions; the native code's size; and the ESP32 cost model's figures
(tools/model: MODELLED from the real xtensawin code, DESIGN §2).

MicroPython figures come from the pinned unix port (the engine precompiled as on the
board, the rest from source) with a 1 MB heap (the S3's heap is PSRAM); allocation is
counted separately with gc.mem_alloc() deltas while the GC is disabled, in a 4 MB heap.
"""

import json
import os
import pathlib
import statistics
import tempfile
import time

import host.tokens as T
from tests.support.mp import run_mp
from tests.host.tok_support import CHALLENGE, NOW, PHONE, mint, trust_body

N_VERIFY = 40
N_TOKEN = 25

MP_BENCH = r'''
import gc, json, sys, time, hashlib
from binascii import unhexlify
from tokens import p256
import p256_ref as ref
from tokens.trust import TrustStore
from tokens.verify import TokenVerifier
d = json.load(open(sys.argv[1]))
mode = sys.argv[2]
keys = [(unhexlify(a), unhexlify(b), unhexlify(c)) for a, b, c in d["verify"]]
del d["verify"]
gc.collect()  # keep the live heap to what a validator holds: GC cost grows with it

def med(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]

out = {}
if mode == "time":
    p256.init()
    gc.collect()
    out["heap_before"] = gc.mem_alloc()
    t = []
    for pub, msg, sig in keys:
        t0 = time.ticks_us(); ok = p256.verify(pub, msg, sig); t.append(time.ticks_diff(time.ticks_us(), t0))
        assert ok
    out["fresh_us"] = med(t)
    out["fresh_min"] = min(t)
    # the bignum verifier, paired: each key by both, alternating
    ref.init()
    tv, tb = [], []
    for pub, msg, sig in keys:
        t0 = time.ticks_us(); ok = p256.verify(pub, msg, sig); tv.append(time.ticks_diff(time.ticks_us(), t0))
        t0 = time.ticks_us(); ok2 = ref.verify(pub, msg, sig); tb.append(time.ticks_diff(time.ticks_us(), t0))
        assert ok and ok2
    out["paired_viper_us"] = med(tv)
    out["paired_bignum_us"] = med(tb)
    out["paired_ratio"] = med([b / v for b, v in zip(tb, tv)])
    pub, msg, sig = keys[0]
    q = p256.decode_point(pub)
    t0 = time.ticks_us(); tabs = p256.prepare(q[0], q[1]); out["prepare_us"] = time.ticks_diff(time.ticks_us(), t0)
    dg = hashlib.sha256(msg).digest()
    t = []
    for i in range(len(keys)):
        t0 = time.ticks_us(); ok = p256.verify_prepared(tabs, dg, sig); t.append(time.ticks_diff(time.ticks_us(), t0))
        assert ok
    out["prepared_us"] = med(t)
    out["prepared_min"] = min(t)
    rt = ref.prepare(q[0], q[1])
    tv, tb = [], []
    for i in range(len(keys)):
        t0 = time.ticks_us(); ok = p256.verify_prepared(tabs, dg, sig); tv.append(time.ticks_diff(time.ticks_us(), t0))
        t0 = time.ticks_us(); ok2 = ref.verify_prepared(rt, dg, sig); tb.append(time.ticks_diff(time.ticks_us(), t0))
        assert ok and ok2
    out["paired_prep_viper_us"] = med(tv)
    out["paired_prep_bignum_us"] = med(tb)
    v = TokenVerifier(TrustStore.from_body(unhexlify(d["trust"])), "TSM")
    qr = d["qr"].encode()
    assert v.check_qr(qr, d["now"], True).ok  # issuer key prepared, G tables built
    for name, cached in (("qr_uncached_us", False), ("qr_cached_us", True)):
        t = []
        for i in range(d["n_token"]):
            if not cached:
                v.cache.clear()
            t0 = time.ticks_us(); r = v.check_qr(qr, d["now"], True); t.append(time.ticks_diff(time.ticks_us(), t0))
            assert r.ok and r.cached == cached
        out[name] = med(t)
    nfc = unhexlify(d["nfc"]); ch = unhexlify(d["challenge"])
    t = []
    for i in range(d["n_token"]):
        t0 = time.ticks_us(); r = v.check_nfc(nfc, ch, d["now"], True); t.append(time.ticks_diff(time.ticks_us(), t0))
        assert r.ok
    out["nfc_cached_us"] = med(t)
    gc.collect()
    out["heap_used"] = gc.mem_alloc()
else:
    pub, msg, sig = keys[0]
    p256.init()
    p256.verify(pub, msg, sig)
    q = p256.decode_point(pub)
    tabs = p256.prepare(q[0], q[1])
    dg = hashlib.sha256(msg).digest()
    ref.init()
    rt = ref.prepare(q[0], q[1])
    ref.verify(pub, msg, sig)
    for name, f, a in (("fresh_alloc", p256.verify, (pub, msg, sig)),
                       ("prepared_alloc", p256.verify_prepared, (tabs, dg, sig)),
                       ("bignum_fresh_alloc", ref.verify, (pub, msg, sig)),
                       ("bignum_prepared_alloc", ref.verify_prepared, (rt, dg, sig))):
        gc.collect(); gc.disable(); m = gc.mem_alloc(); f(*a); out[name] = gc.mem_alloc() - m; gc.enable()
print(json.dumps(out))
'''


def _mp(mode, inputs, heap):
    with tempfile.TemporaryDirectory() as tmp:
        script = pathlib.Path(tmp) / "bench_tok_mp.py"
        script.write_text(MP_BENCH)
        data = pathlib.Path(tmp) / "in.json"
        data.write_text(json.dumps(inputs))
        r = run_mp([str(script), str(data), mode], heap=heap, timeout=600,
                   paths=["tests/firmware"])
    if r.returncode:
        raise RuntimeError("micropython bench failed:\n" + r.stdout + r.stderr)
    return json.loads(r.stdout.strip().splitlines()[-1])


def run():
    keys = [T.key_from_int(1000003 * (i + 1)) for i in range(N_VERIFY)]
    cases = []
    for i, k in enumerate(keys):
        msg = b"bench message %d" % i
        cases.append((T.public_bytes(k), msg, T.sign_es256(k, msg)))
    p = mint(category=1)
    qr_proof = T.make_proof(p, PHONE, NOW, 1)
    nfc_proof = T.make_proof(p, PHONE, NOW, 1, CHALLENGE)
    qr_text = T.qr_text(p, qr_proof)
    inputs = {"verify": [[a.hex(), b.hex(), c.hex()] for a, b, c in cases],
              "trust": trust_body().hex(), "qr": qr_text, "now": NOW,
              "nfc": T.nfc_payload(p, nfc_proof).hex(), "challenge": CHALLENGE.hex(),
              "n_token": N_TOKEN}
    load = os.getloadavg()[0]
    mp = _mp("time", inputs, "1M")
    mem = _mp("alloc", inputs, "4M")

    # cryptography (OpenSSL) under CPython, same keys and messages, same run
    pubs = [T.public_key_from_bytes(a) for a, _, _ in cases]
    t = []
    for _ in range(5):
        for pk, (_pub, msg, sig) in zip(pubs, cases):
            t0 = time.perf_counter()
            assert T.verify_es256(pk, msg, sig)
            t.append(time.perf_counter() - t0)
    cpy_ms = statistics.median(t) * 1e3

    ms = {k: v / 1000 for k, v in mp.items() if k.endswith("_us")}
    fresh, prep = ms["fresh_us"], ms["prepared_us"]
    from tools.model.__main__ import model
    mdl = model(40)
    est = "MODELLED (tools/model, DESIGN §2): xtensawin instructions at CPI 1.3, 240 MHz, " \
          "bytecode x170, median of 40 random signatures (p99 %.1f ms); never measured on a board"
    rows = [
        {"name": "ES256 verify, MicroPython viper engine, new key", "value": fresh,
         "unit": "ms", "note": "median of %d keys; min %.2f ms" % (N_VERIFY, mp["fresh_min"] / 1000)},
        {"name": "ES256 verify, MicroPython viper engine, prepared key", "value": prep,
         "unit": "ms", "note": "median of %d, min %.2f ms; issuer keys are prepared once" % (
             N_VERIFY, mp["prepared_min"] / 1000)},
        {"name": "paired, new key: viper / bignum (the old verifier)", "value": "%.2f / %.2f" % (
            ms["paired_viper_us"], ms["paired_bignum_us"]), "unit": "ms",
         "note": "medians, each key by both alternately; bignum/viper per key: median %.2fx"
         % mp["paired_ratio"]},
        {"name": "paired, prepared key: viper / bignum", "value": "%.2f / %.2f" % (
            ms["paired_prep_viper_us"], ms["paired_prep_bignum_us"]), "unit": "ms",
         "note": "medians, alternately"},
        {"name": "ES256 key preparation (once per issuer key)", "value": ms["prepare_us"],
         "unit": "ms", "note": "2 KB of tables per key"},
        {"name": "ES256 verify, cryptography (OpenSSL), CPython", "value": cpy_ms, "unit": "ms",
         "note": "median of %d, same keys and messages" % (5 * N_VERIFY)},
        {"name": "ratio viper new key / cryptography", "value": fresh / cpy_ms, "unit": "x",
         "note": "same run (issue 12 bar: <= 25)"},
        {"name": "ratio viper prepared key / cryptography", "value": prep / cpy_ms,
         "unit": "x", "note": "same run"},
        {"name": "bytes allocated per verify, new key", "value": mem["fresh_alloc"], "unit": "B",
         "note": "gc.mem_alloc delta, GC disabled (issue 12 bar: <= 32 KB); bignum: %d B"
         % mem["bignum_fresh_alloc"]},
        {"name": "bytes allocated per verify, prepared key", "value": mem["prepared_alloc"],
         "unit": "B", "note": "as above; bignum: %d B" % mem["bignum_prepared_alloc"]},
        {"name": "native code of the firmware (executable internal RAM)", "value":
         mdl["native_code_bytes"], "unit": "B", "note": "all native/viper functions, xtensawin "
         "(budget 65,536)"},
        {"name": "ESP32 model: ES256 verify, new key", "value": mdl["verify_new_key_ms"],
         "unit": "ms", "note": est % mdl["verify_new_key_p99_ms"] + " (issue 12 bar: <= 100)"},
        {"name": "ESP32 model: ES256 verify, prepared key", "value": mdl["verify_prepared_ms"],
         "unit": "ms", "note": est % mdl["verify_prepared_p99_ms"] + " (issue 12 bar: <= 50)"},
        {"name": "QR token check, pass not cached", "value": ms["qr_uncached_us"], "unit": "ms",
         "note": "median of %d: pass sig (prepared key) + cnf sqrt + proof sig" % N_TOKEN},
        {"name": "QR token check, pass cached", "value": ms["qr_cached_us"], "unit": "ms",
         "note": "median of %d: proof signature only" % N_TOKEN},
        {"name": "NFC token check, pass cached", "value": ms["nfc_cached_us"], "unit": "ms",
         "note": "median of %d" % N_TOKEN},
        {"name": "heap in use during the verify timings", "value": mp["heap_before"],
         "unit": "B", "note": "modules, G's tables, the engine's workspace, bench inputs"},
        {"name": "heap in use after the token checks", "value": mp["heap_used"], "unit": "B",
         "note": "+ trust store, 1 prepared key, verifier, cached pass, the bignum oracle"},
        {"name": "pass size", "value": len(p), "unit": "B", "note": "8-byte ids, 4-letter issuer"},
        {"name": "tap proof size (QR / NFC)", "value": "%d / %d" % (len(qr_proof), len(nfc_proof)),
         "unit": "B", "note": "NFC adds the 16-byte challenge"},
        {"name": "token size CBOR [pass, proof] (QR)", "value": 1 + len(p) + len(qr_proof),
         "unit": "B", "note": "NFC: %d B, %d response APDUs" % (
             1 + len(p) + len(nfc_proof), len(T.split_response(T.nfc_payload(p, nfc_proof))))},
        {"name": "QR text length", "value": len(qr_text), "unit": "chars",
         "note": "BRT1: + base45, alphanumeric mode"},
        {"name": "QR version (error correction M / L)",
         "value": "%d / %d" % (T.qr_version(qr_text, "M"), T.qr_version(qr_text, "L")),
         "unit": "", "note": "segno"},
    ]
    rows.append({"name": "load average (1 min) when measured", "value": load, "unit": "",
                 "note": "2 shared cores: above ~1 the timings above are inflated"})
    for r in rows:
        r["group"] = "tokens"
    return rows
