"""Generated input against the firmware's token code under MicroPython (-X heapsize=128K),
through one long-lived worker per module (no process per case):
- ES256: the firmware verifier vs `cryptography` over thousands of keys and messages, both
  directions, and every single-bit change of signature, message or key rejected;
- malformed tokens (truncated, oversized, wrong types, huge declared lengths, indefinite
  lengths, deep nesting, trailing bytes, bad base45, wrong prefix): each gets a typed
  reason, no exception escapes, the worker never hangs and its heap does not leak."""

import random

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import host.tokens as T
from tests.host.test_tok_reasons import R
from tests.host.tok_support import NOW, Verifier, mint, nfc, qr, trust_body

N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
TOKEN_CODES = set(R.values()) - {0}
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def fw():
    v = Verifier()
    yield v
    v.close()


def flip(b, bit):
    b = bytearray(b)
    b[bit // 8] ^= 1 << (bit % 8)
    return bytes(b)


def verify_many(fw, cases):
    return fw.ask(op="verify_many", cases=[[a.hex(), b.hex(), c.hex()] for a, b, c in cases])["ok"]


# ---------------- ES256 against cryptography ----------------

@settings(max_examples=150, **SETTINGS)
@given(d=st.integers(1, N - 1), msg=st.binary(max_size=300), sbit=st.integers(0, 511),
       mbit=st.integers(0, 2399), kbit=st.integers(8, 519))
def test_es256_agrees_with_cryptography(fw, d, msg, sbit, mbit, kbit):
    key = T.key_from_int(d)
    pub = T.public_bytes(key)
    sig = T.sign_es256(key, msg)
    high = sig[:32] + (N - int.from_bytes(sig[32:], "big")).to_bytes(32, "big")
    cases = [(pub, msg, sig), (pub, msg, high), (pub, msg, flip(sig, sbit)),
             (flip(pub, kbit), msg, sig)]
    if msg:
        cases.append((pub, flip(msg, mbit % (8 * len(msg))), sig))
    got = verify_many(fw, cases)
    want = [T.verify_es256(p, m, s) for p, m, s in cases]
    assert got == want  # the two implementations agree on every case, both directions
    assert got[0] and got[1]  # what cryptography signs verifies (in both S forms)
    assert not any(got[2:])   # every single-bit change is rejected


def test_es256_thousands_of_random_keys_and_messages(fw):
    rnd = random.Random(3)
    cases, want = [], []
    for _ in range(1000):
        key = T.key_from_int(rnd.randrange(1, N))
        pub = T.public_bytes(key)
        msg = rnd.randbytes(rnd.randrange(0, 100))
        sig = T.sign_es256(key, msg)
        cases.append((pub, msg, sig))
        want.append(True)
        which = rnd.randrange(3)
        if which == 0:
            cases.append((pub, msg, flip(sig, rnd.randrange(512))))
        elif which == 1 and msg:
            cases.append((pub, flip(msg, rnd.randrange(8 * len(msg))), sig))
        else:
            cases.append((flip(pub, rnd.randrange(8, 520)), msg, sig))
        want.append(False)
    got = []
    for i in range(0, len(cases), 10):  # small batches: each line is parsed in a 128K heap
        got += verify_many(fw, cases[i:i + 10])
    assert got == want


def test_es256_digests_not_below_n(fw):
    # e >= n (about 2^-32 of all SHA-256 digests) is reduced before the division u1 = e/s:
    # the one case the engine's Euclid cannot take as it comes. Signed by cryptography over
    # the prehashed digest; the digest e - n (same e mod n) verifies too, e + 1 does not.
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, utils

    rnd = random.Random(7)
    cases, want = [], []
    for e in (N, N + 1, 2 ** 256 - 1, N + rnd.randrange(2 ** 256 - N), 2 ** 256 - 2):
        key = T.key_from_int(rnd.randrange(1, N))
        pub = T.public_bytes(key)
        dg = e.to_bytes(32, "big")
        der = key.sign(dg, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
        r, s = utils.decode_dss_signature(der)
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        cases += [(pub, dg, sig), (pub, (e - N).to_bytes(32, "big"), sig)]
        want += [True, True]
        if e + 1 < 2 ** 256:
            cases.append((pub, (e + 1).to_bytes(32, "big"), sig))
            want.append(False)
    got = fw.ask(op="verify_digest_many",
                 cases=[[a.hex(), b.hex(), c.hex()] for a, b, c in cases])["ok"]
    assert got == want


# ---------------- malformed tokens ----------------

def assert_typed(v):
    assert not v["ok"]
    assert v["reason"] in TOKEN_CODES and v["reason"] != R["INTERNAL"], v


def test_every_truncation_of_a_real_token(fw):
    payload = nfc(mint())
    for n in range(len(payload)):
        assert_typed(fw.nfc(payload[:n]))
    text = qr(mint())
    for n in range(0, len(text), 7):
        assert_typed(fw.qr(text[:n]))


MUT_PASS = mint(wallet=b"MUTATE01")


@settings(max_examples=150, **SETTINGS)
@given(data=st.data())
def test_mutated_real_tokens_are_rejected_with_a_reason(fw, data):
    original = nfc(MUT_PASS)
    payload = bytearray(original)
    n = data.draw(st.integers(1, 4))
    for _ in range(n):
        i = data.draw(st.integers(0, len(payload) - 1))
        payload[i] = data.draw(st.integers(0, 255))
    v = fw.nfc(bytes(payload))
    if bytes(payload) == original:
        assert v["ok"]
    else:
        assert_typed(v)


cbor_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**64, 2**64 - 1) | st.binary(max_size=24)
    | st.text(max_size=20) | st.floats(allow_nan=False),
    lambda kids: st.lists(kids, max_size=5) | st.dictionaries(
        st.integers(-10, 10) | st.text(max_size=3), kids, max_size=5),
    max_leaves=16)  # requests stay small: the worker parses them in the same 128K heap


@settings(max_examples=150, **SETTINGS)
@given(value=cbor_values, tag=st.booleans())
def test_arbitrary_cbor_of_wrong_shapes(fw, value, tag):
    raw = cbor2.dumps(cbor2.CBORTag(18, value) if tag else value)
    assert_typed(fw.nfc(raw))
    assert_typed(fw.qr("BRT1:" + T.b45encode(raw)))
    # and inside a real token's place: [value, proof] and [pass, value]
    pass_b, proof_b = T.split_token(nfc(mint()))
    assert_typed(fw.nfc(b"\x82" + raw + proof_b))
    assert_typed(fw.nfc(b"\x82" + pass_b + raw))


def test_huge_declared_lengths_indefinite_and_deep(fw):
    pass_b, proof_b = T.split_token(nfc(mint()))
    cases = [
        b"\x82\x5b" + b"\xff" * 8 + pass_b,          # bstr of 2^64-1 bytes declared
        b"\x82\x9b" + b"\xff" * 8 + pass_b,          # array of 2^64-1 items
        b"\x82\xbb\x00\x00\x00\x00\xff\xff\xff\xff",  # map of 2^32-1 pairs
        b"\x82\x5a\x7f\xff\xff\xff",                 # 2 GB bstr, 4-byte length
        b"\x9f" + pass_b + proof_b + b"\xff",        # indefinite array
        b"\x82\x5f\x41\x00\xff" + proof_b,           # indefinite bstr
        b"\x81" * 200 + b"\x00",                     # deep nesting
        b"\x82" + b"\x81" * 40 + b"\x00" + proof_b,
        b"\x82" + pass_b + proof_b + b"\x00",        # trailing bytes
        b"\x82\x1c" + proof_b,                       # reserved additional info
        b"\x82\xf9\x00\x00" + proof_b,               # half float
        b"\x82\xc6" + pass_b + proof_b,              # tag
        b"\x82\x18\x05" + proof_b,                   # non-shortest integer
        b"", b"\x82", b"\xff",
    ]
    for raw in cases:
        assert_typed(fw.nfc(raw))
        assert_typed(fw.qr("BRT1:" + T.b45encode(raw)))
    assert_typed(fw.nfc(b"\x00" * 1000))  # oversized (the worker line limits the size here)
    assert_typed(fw.qr("BRT1:" + "A" * 1000))  # over the 773-character limit


@settings(max_examples=200, **SETTINGS)
@given(text=st.text(max_size=120) | st.text(alphabet=T.base45.ALPHABET, max_size=600))
def test_random_text_bad_base45_and_prefixes(fw, text):
    for t in (text, "BRT1:" + text):
        try:
            t.encode("ascii")
        except UnicodeEncodeError:
            v = fw.qr(t.encode("utf-8", "replace"))
        else:
            v = fw.qr(t)
        assert_typed(v)


def test_heap_does_not_leak_over_many_rejections(fw):
    body = trust_body()
    p = mint(wallet=b"LEAKTEST")  # one pass: signatures are random, each mint() is new
    assert fw.qr(qr(p), trust=body)["ok"]  # cached from here on
    before = fw.ask(op="mem")["free"]
    payload = nfc(p)
    for n in range(0, len(payload), 3):
        fw.nfc(payload[:n], trust=body)
    for _ in range(5):
        assert fw.qr(qr(p), now=NOW, trust=body)["ok"]
    after = fw.ask(op="mem")["free"]
    assert after > before - 2048, (before, after)
