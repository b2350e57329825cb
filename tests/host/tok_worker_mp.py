# A long-lived MicroPython worker for the token tests (run by tests/support/mp.MPWorker):
# one JSON request per line in, one JSON answer per line out. It runs the real firmware
# verifier (firmware/ is on MICROPYPATH); exceptions that escape the verifier are reported
# as {"escaped": ...} so the tests can insist that none do.
import gc
import io
import json
import sys
from binascii import hexlify, unhexlify

from tokens import p256
from tokens.trust import TrustStore
from tokens.verify import TokenVerifier

_verifiers = {}
_ballast = [None]  # head of a chain of (block, next) pairs: no list regrowth garbage


def _hex(b):
    return None if b is None else hexlify(b).decode()


def verifier(req):
    key = (req["trust"], req.get("operator", "TSM"), req.get("window", 30))
    v = _verifiers.get(key)
    if v is None:
        if len(_verifiers) > 1:
            _verifiers.clear()
        v = TokenVerifier(TrustStore.from_body(unhexlify(req["trust"])),
                          req.get("operator", "TSM"), qr_window=req.get("window", 30))
        _verifiers[key] = v
    if req.get("nocache"):
        v.cache.clear()
    v.fast = req.get("fast", True)   # False: the general path only (test_tok_fastpath.py)
    return v


def verdict(v):
    return {"ok": v.ok, "reason": v.reason, "detail": v.detail, "channel": v.channel,
            "wallet_id": _hex(v.wallet_id), "pass_id": _hex(v.pass_id),
            "category": v.category, "allowance": v.allowance, "pass_exp": v.pass_exp,
            "proof_id": _hex(v.proof_id), "proof_time": v.proof_time,
            "counter": v.counter, "cached": v.cached, "kid": _hex(v.kid)}


def squeeze(leave):
    # hold on to heap until only `leave` bytes are free (memory-exhaustion tests)
    # The blocks are chained in small fixed-size pairs: a growing list would leave its old
    # arrays behind as garbage, and a GC inside the verify would find kilobytes free again
    # (seen as a flaky pass of the out-of-memory test).
    gc.collect()
    size = 1024
    while gc.mem_free() > leave and size >= 16:
        try:
            _ballast[0] = (bytearray(min(size, gc.mem_free() - leave + 16)), _ballast[0])
        except MemoryError:
            size //= 2  # fragmentation: fill the smaller holes


def handle(req):
    op = req["op"]
    if op == "verify":
        return {"ok": p256.verify(unhexlify(req["pub"]), unhexlify(req["msg"]),
                                  unhexlify(req["sig"]))}
    if op == "verify_many":
        # [[pub, msg, sig], ...] -> [bool, ...]: one round trip for many checks
        return {"ok": [p256.verify(unhexlify(a), unhexlify(b), unhexlify(c))
                       for a, b, c in req["cases"]]}
    if op == "verify_digest_many":
        # [[pub, digest, sig], ...] -> [bool, ...]: the 32-byte digest as given (e >= n too)
        return {"ok": [p256.verify_digest(unhexlify(a), unhexlify(b), unhexlify(c))
                       for a, b, c in req["cases"]]}
    if op == "trust":
        try:
            TrustStore.from_body(unhexlify(req["body"]))
            return {"ok": True}
        except Exception as e:
            return {"ok": False, "error": type(e).__name__,
                    "reason": getattr(e, "reason", None)}
    if op in ("qr", "nfc"):
        v = verifier(req)
        gc.collect()
        free0 = gc.mem_free()
        if op == "qr":
            text = req["text"].encode() if "text" in req else unhexlify(req["raw"])
        else:
            payload, ch = unhexlify(req["payload"]), unhexlify(req["challenge"])
        squeezed = None
        if "leave" in req:
            squeeze(req["leave"])
            squeezed = gc.mem_free()
        try:
            if op == "qr":
                r = v.check_qr(text, req["now"], req.get("clock_ok", True))
            else:
                r = v.check_nfc(payload, ch, req["now"], req.get("clock_ok", True))
        finally:
            _ballast[0] = None
        out = verdict(r)
        out["free_before"] = free0
        out["free_squeezed"] = squeezed
        return out
    if op == "heapmap":
        import micropython
        gc.collect()
        micropython.mem_info(1)
        return {}
    if op == "mem":
        gc.collect()
        return {"free": gc.mem_free(), "alloc": gc.mem_alloc()}
    return {"error": "unknown op"}


while True:
    gc.collect()  # the request line and its JSON need contiguous room in a 128K heap
    line = sys.stdin.readline()
    if not line:
        break
    try:
        ans = handle(json.loads(line))
    except Exception as e:  # reported, not hidden: tests assert there are none
        buf = io.StringIO()
        sys.print_exception(e, buf)
        ans = {"escaped": buf.getvalue()}
    print(json.dumps(ans))
