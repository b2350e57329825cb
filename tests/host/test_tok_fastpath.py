"""The verifier's fast path (firmware/tokens/scan.py: the token read in place) against its
general path (tokens/general.py: the strict decoder), under MicroPython: for generated
tokens - validly signed ones whose claims and proofs are encoded every way CBOR allows
(keys in any order, every integer width, edge lengths, non-ASCII text, missing, extra and
repeated keys) and byte-mutated ones - both paths give the same verdict: the same answer,
the same reason, the same claims. The fast path may only say "not mine"; it must never
decide differently."""

import random

import cbor2
from hypothesis import HealthCheck, given, settings, strategies as st
import pytest

import host.tokens as T
from host.tokens import token as TK
from tests.host.tok_support import CHALLENGE, ISSUER, NOW, PHONE, Verifier, mint, nfc

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
FIELDS = ("ok", "reason", "channel", "wallet_id", "pass_id", "category", "allowance",
          "pass_exp", "proof_id", "proof_time", "counter", "kid")


@pytest.fixture(scope="module")
def fw():
    v = Verifier()
    yield v
    v.close()


def both(fw, kind, data, now=NOW, clock_ok=True):
    """(fast verdict, general verdict) of one token, each on an empty pass cache."""
    out = []
    for fast in (True, False):
        if kind == "qr":
            v = fw.qr(data, now=now, clock_ok=clock_ok, nocache=True, fast=fast)
        else:
            v = fw.nfc(data, now=now, clock_ok=clock_ok, nocache=True, fast=fast)
        out.append({k: v[k] for k in FIELDS})
    return out


def head(major, n, width=None):
    """A CBOR head with argument n, in its shortest form or a chosen wider one."""
    if width is None:
        return _shortest(major, n)
    ai = {1: 24, 2: 25, 4: 26, 8: 27}[width]
    return bytes([(major << 5) | ai]) + n.to_bytes(width, "big")


def _shortest(major, n):
    if n < 24:
        return bytes([(major << 5) | n])
    for w, ai in ((1, 24), (2, 25), (4, 26), (8, 27)):
        if n < 1 << (8 * w):
            return bytes([(major << 5) | ai]) + n.to_bytes(w, "big")
    raise ValueError(n)


def cmap(items):
    """A CBOR map of already-encoded (key, value) pairs, in the order given."""
    return _shortest(5, len(items)) + b"".join(k + v for k, v in items)


def sign1(key, prot_map, payload):
    prot = cbor2.dumps(prot_map)
    sig = T.sign_es256(key, TK._sig_structure(prot, payload))
    return cbor2.dumps([prot, {}, payload, sig])


# The generators draw one seed from hypothesis and make their choices with random.Random:
# hypothesis favours the small end of every range, which here would make nearly every
# token odd in several ways at once and stop it at the first step; uniform choices let
# most tokens reach the proof's steps with one oddity or none.

def uint_enc(rnd, v):
    """v as a uint, shortest mostly, sometimes wider (not shortest: BAD_CBOR)."""
    if rnd.randrange(40) == 0:
        return head(0, v, rnd.choice([w for w in (1, 2, 4, 8) if v < 1 << (8 * w)]))
    return _shortest(0, v)


def mostly(rnd, good, odd_ones):
    """The good value 7 times in 8, else one of odd_ones (a list or a function of rnd)."""
    if rnd.randrange(8):
        return good
    return odd_ones(rnd) if callable(odd_ones) else rnd.choice(odd_ones)


U32_ODD = [0, 1, 30, 255, 256, 65535, 65536, 2 ** 31, 2 ** 32 - 1, 2 ** 32]


def _text(rnd):
    return "".join(rnd.choice("AZaz09 -\u00e9\u4e2d") for _ in range(rnd.randrange(35)))


def _ident(rnd):
    return rnd.randbytes(rnd.randrange(3, 18))


@st.composite
def claims_payloads(draw):
    rnd = random.Random(draw(st.integers(0, 2 ** 32)))
    items = {
        b"\x01": cbor2.dumps(mostly(rnd, "BRTW", _text)),
        b"\x04": uint_enc(rnd, mostly(rnd, NOW + 86400 * 7, U32_ODD)),
        b"\x06": uint_enc(rnd, mostly(rnd, NOW - 86400, U32_ODD)),
        b"\x20": cbor2.dumps(mostly(rnd, b"WALLET01", _ident)),
        b"\x21": cbor2.dumps(mostly(rnd, b"PASS0001", _ident)),
        b"\x22": uint_enc(rnd, mostly(rnd, 4, list(range(8)))),
        b"\x23": uint_enc(rnd, mostly(rnd, 50_000, U32_ODD)),
        b"\x24": cbor2.dumps(mostly(rnd, "TSM", ["TSX", "TS", "TSMM", "T\u00e9M", ""])),
    }
    x = T.public_bytes(PHONE)[1:33]
    odd = bool(T.public_bytes(PHONE)[64] & 1)
    ck = [(b"\x01", b"\x02"), (b"\x20", b"\x01"), (b"\x21", cbor2.dumps(x)),
          (b"\x22", cbor2.dumps(odd))]
    tweak = rnd.randrange(20)
    if tweak == 0:
        ck[3] = (b"\x22", cbor2.dumps(not odd))                  # the other y: wrong key
    elif tweak == 1:
        ck[2] = (b"\x21", cbor2.dumps(x[:31]))                   # x too short
    elif tweak == 2:
        ck.pop(rnd.randrange(4))                                 # a COSE_Key field missing
    elif tweak == 3:
        ck[0] = (b"\x01", b"\x03")                               # not EC2
    elif tweak == 4:
        ck.append(ck[0])                                         # a COSE_Key field twice
    rnd.shuffle(ck)
    items[b"\x08"] = cmap([(b"\x01", cmap(ck))])
    pairs = list(items.items())
    rnd.shuffle(pairs)
    extra = rnd.randrange(20)
    if extra == 0:
        pairs = pairs[:-1]                                       # a claim missing
    elif extra == 1:
        pairs = pairs + [pairs[0]]                               # a key twice
    elif extra == 2:
        pairs = pairs + [(b"\x25", b"\x00")]                     # an unknown claim
    return cmap(pairs)


@st.composite
def proof_payloads(draw, pass_bytes, nfc_channel):
    rnd = random.Random(draw(st.integers(0, 2 ** 32)))
    ph = TK.pass_hash(pass_bytes)
    tweak = rnd.randrange(16)
    if tweak == 0:
        ph = ph[:15]
    elif tweak == 1:
        ph = bytes(16)
    items = [(b"\x01", cbor2.dumps(ph)), (b"\x02", uint_enc(rnd, NOW)),
             (b"\x03", uint_enc(rnd, mostly(rnd, 3, U32_ODD)))]
    ch_tweak = rnd.randrange(10)
    if nfc_channel != (ch_tweak == 0):                           # a challenge (or not) where
        ch = CHALLENGE if ch_tweak != 1 else CHALLENGE[:15]      # the channel wants the other
        items.append((b"\x04", cbor2.dumps(ch)))
    more = rnd.randrange(9)
    if more == 0:
        items.append((b"\x05", b"\x00"))                         # an unknown field
    elif more == 1:
        items.pop(rnd.randrange(len(items)))                     # a field missing
    elif more == 2:
        items.append(items[0])                                   # a field twice
    rnd.shuffle(items)
    return cmap(items)


@settings(max_examples=120, **SETTINGS)
@given(data=st.data())
def test_generated_tokens_get_the_same_verdict_both_ways(fw, data):
    payload = data.draw(claims_payloads())
    order = data.draw(st.booleans())   # the pass's protected header in either key order
    prot = {1: -7, 4: T.kid(ISSUER)} if order else {4: T.kid(ISSUER), 1: -7}
    pass_b = sign1(ISSUER, prot, payload)
    channel = data.draw(st.sampled_from(["qr", "nfc"]))
    proof_pl = data.draw(proof_payloads(pass_b, channel == "nfc"))
    proof_b = sign1(PHONE, {1: -7}, proof_pl)
    tok = b"\x82" + pass_b + proof_b
    if channel == "qr":
        fast, general = both(fw, "qr", T.PREFIX + T.b45encode(tok))
    else:
        fast, general = both(fw, "nfc", tok)
    assert fast == general
    ACCEPTED.append(fast["ok"])


ACCEPTED = []


def test_the_generated_tokens_were_not_all_rejections():
    # runs after the generator above (file order): a fair share of its tokens must have
    # been accepted, or the comparison never reached the proof's steps
    assert len(ACCEPTED) >= 50 and sum(ACCEPTED) >= len(ACCEPTED) // 10, \
        (sum(ACCEPTED), len(ACCEPTED))


def test_the_usual_tokens_are_accepted_both_ways(fw):
    # the control: the generated tokens above are not all rejections
    p = mint()
    fast, general = both(fw, "nfc", nfc(p))
    assert fast == general and fast["ok"]
    prot = {4: T.kid(ISSUER), 1: -7}                              # the other header order
    raw = cbor2.loads(p)
    p2 = sign1(ISSUER, prot, raw[2])
    fast, general = both(fw, "nfc", nfc(p2))
    assert fast == general and fast["ok"]


@settings(max_examples=150, **SETTINGS)
@given(data=st.data())
def test_byte_mutated_tokens_get_the_same_verdict_both_ways(fw, data):
    payload = bytearray(nfc(mint(wallet=b"FASTPATH")))
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(payload) - 1))
        payload[i] = data.draw(st.integers(0, 255))
    fast, general = both(fw, "nfc", bytes(payload))
    assert fast == general


def test_many_random_mutations_same_verdict(fw):
    rnd = random.Random(11)
    base = nfc(mint(wallet=b"RANDOM01"))
    for _ in range(150):
        p = bytearray(base)
        for _ in range(rnd.randrange(1, 4)):
            p[rnd.randrange(len(p))] = rnd.randrange(256)
        fast, general = both(fw, "nfc", bytes(p))
        assert fast == general, bytes(p).hex()
