"""Shared fixtures for the token tests: deterministic keys, a trust-list body, token
minting shortcuts and the MicroPython verifier worker."""

import json
import pathlib

import cbor2

import host.tokens as T
from tests.support.mp import MPWorker

HERE = pathlib.Path(__file__).resolve().parent
NOW = 1_790_000_000
DAY = 86400

ISSUER = T.key_from_int(0x1111_2222_3333)
ISSUER2 = T.key_from_int(0x4444_5555)          # not in the trust list
PHONE = T.key_from_int(0x7777_8888_9999)
OTHER_PHONE = T.key_from_int(0xABCDEF)
CHALLENGE = bytes(range(16))


def trust_body(rows=None):
    """Trust-list bundle body: CBOR array of [kid, pub, not_before, not_after, usage]."""
    if rows is None:
        rows = [(ISSUER, NOW - 100 * DAY, NOW + 100 * DAY, 1)]
    return cbor2.dumps([[T.kid(k), T.public_bytes(k), nb, na, u] for k, nb, na, u in rows])


def mint(issuer=ISSUER, phone=PHONE, wallet=b"WALLET01", pass_id=b"PASS0001", category=0,
         allowance=50_000, iat=NOW - DAY, exp=NOW + 7 * DAY, operator="TSM"):
    return T.mint_pass(issuer, T.public_bytes(phone), wallet, pass_id, category, allowance,
                       iat, exp, operator=operator)


def qr(pass_b, phone=PHONE, time=NOW, counter=1, challenge=None):
    return T.qr_text(pass_b, T.make_proof(pass_b, phone, time, counter, challenge))


def nfc(pass_b, phone=PHONE, time=NOW, counter=1, challenge=CHALLENGE):
    return T.nfc_payload(pass_b, T.make_proof(pass_b, phone, time, counter, challenge))


class Verifier:
    """The firmware verifier in one long-lived micropython -X heapsize=128K process."""

    def __init__(self, heap="128K"):
        self.w = MPWorker(HERE / "tok_worker_mp.py", heap=heap)

    def ask(self, **req):
        line = self.w.ask(json.dumps(req))
        try:
            ans = json.loads(line)
        except ValueError:
            self.w.proc.stdin.close()
            raise AssertionError("worker answered %r\n%s%s" % (
                line[:300], self.w.proc.stdout.read()[:3000],
                self.w.proc.stderr.read()[:3000])) from None
        assert "escaped" not in ans, ans["escaped"]
        return ans

    def qr(self, text, now=NOW, clock_ok=True, trust=None, **kw):
        key = "raw" if isinstance(text, bytes) else "text"
        if isinstance(text, bytes):
            text = text.hex()
        return self.ask(op="qr", trust=(trust or trust_body()).hex(), now=now,
                        clock_ok=clock_ok, **{key: text}, **kw)

    def nfc(self, payload, challenge=CHALLENGE, now=NOW, clock_ok=True, trust=None, **kw):
        return self.ask(op="nfc", trust=(trust or trust_body()).hex(), now=now,
                        clock_ok=clock_ok, payload=bytes(payload).hex(),
                        challenge=bytes(challenge).hex(), **kw)

    def close(self):
        self.w.close()
