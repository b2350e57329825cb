"""Every token reason code, produced from a real token minted by host/tokens and judged by
the firmware verifier running under MicroPython (-X heapsize=128K)."""

import cbor2
import pytest

import host.tokens as T
from host.tokens import fmt
from tests.host.tok_support import (CHALLENGE, DAY, ISSUER, ISSUER2, NOW, OTHER_PHONE, PHONE,
                                    Verifier, mint, nfc, qr, trust_body)
from tests.support.mp import MPWorker


@pytest.fixture(scope="module")
def fw():
    v = Verifier()
    yield v
    v.close()


def reason_names():
    src = (T.__file__.rsplit("/host/", 1)[0] + "/firmware/tokens/reasons.py")
    names = {}
    for line in open(src):
        if "= const(" in line:
            name, val = line.split("=", 1)
            names[name.strip()] = int(val.split("const(")[1].split(")")[0])
    return names


R = reason_names()


def claims(**over):
    c = {fmt.C_ISS: "BRTW", fmt.C_EXP: NOW + DAY, fmt.C_IAT: NOW - DAY,
         fmt.C_CNF: {1: {1: 2, -1: 1, -2: T.public_bytes(PHONE)[1:33],
                         -3: bool(T.public_bytes(PHONE)[64] & 1)}},
         fmt.C_WALLET: b"WALLET01", fmt.C_PASS: b"PASS0001", fmt.C_CATEGORY: 0,
         fmt.C_ALLOWANCE: 50_000, fmt.C_OPERATOR: "TSM"}
    for k, v in over.items():
        key = getattr(fmt, k)
        if v is None:
            del c[key]
        else:
            c[key] = v
    return c


def signed_pass(c, protected=None, key=ISSUER):
    prot = protected or {1: -7, 4: T.kid(ISSUER)}
    return T.cose_sign1(key, prot, cbor2.dumps(c, canonical=True))


def signed_proof(pass_b, payload, key=PHONE):
    return T.cose_sign1(key, {1: -7}, cbor2.dumps(payload, canonical=True))


def assert_reason(v, name):
    assert v["reason"] == R[name], (name, v)
    assert v["ok"] is (name == "OK")


def test_ok_qr_and_nfc_with_claims(fw):
    p = mint(category=1, allowance=12_345)
    v = fw.qr(qr(p, counter=5), nocache=True)
    assert_reason(v, "OK")
    assert v["wallet_id"] == b"WALLET01".hex() and v["pass_id"] == b"PASS0001".hex()
    assert (v["category"], v["allowance"], v["pass_exp"]) == (1, 12_345, NOW + 7 * DAY)
    assert v["channel"] == 2 and v["proof_time"] == NOW and v["counter"] == 5
    assert v["cached"] is False and v["kid"] == T.kid(ISSUER).hex()
    again = fw.qr(qr(p, counter=6))
    assert again["ok"] and again["cached"] is True
    payload = nfc(p)
    proof_b = T.split_token(payload)[1]
    v = fw.nfc(payload)
    assert_reason(v, "OK")
    assert v["channel"] == 1 and v["proof_id"] == T.proof_id(proof_b).hex()


def test_qr_with_scanner_line_ending_is_accepted(fw):
    assert fw.qr(qr(mint()) + "\r\n")["ok"]


def test_malformed(fw):
    assert_reason(fw.nfc(cbor2.dumps([1, 2])), "MALFORMED")
    assert_reason(fw.nfc(cbor2.dumps([mint()])), "MALFORMED")
    # a real pass with its kid moved to the unprotected header
    arr = cbor2.loads(mint())
    arr[1] = {4: T.kid(ISSUER)}
    bad = cbor2.dumps(arr, canonical=True)
    assert_reason(fw.nfc(T.nfc_payload(bad, T.split_token(nfc(mint()))[1])), "MALFORMED")


def test_too_large(fw):
    p = mint()
    text = qr(p)
    assert_reason(fw.qr(text + "0" * (800 - len(text))), "TOO_LARGE")
    assert_reason(fw.nfc(nfc(p) + b"\x00" * 300), "TOO_LARGE")
    big = signed_pass(claims(C_ISS="X" * 200))  # signed, but over the 320-byte pass limit
    assert len(big) > 320
    assert_reason(fw.nfc(T.nfc_payload(big, T.make_proof(big, PHONE, NOW, 1, CHALLENGE))),
                  "TOO_LARGE")


def test_bad_prefix_and_bad_base45(fw):
    text = qr(mint())
    assert_reason(fw.qr("BRT2:" + text[5:]), "BAD_PREFIX")
    assert_reason(fw.qr("HC1:" + text[5:]), "BAD_PREFIX")
    pad = "A" * ((1 - (len(text) - 5)) % 3)
    assert_reason(fw.qr(text + pad), "BAD_ENCODING")           # length = 1 mod 3
    assert_reason(fw.qr(text[:5] + "a" + text[6:]), "BAD_ENCODING")  # not in the alphabet
    assert_reason(fw.qr("BRT1:" + ":::"), "BAD_ENCODING")     # 0xFFFF < triplet value


def test_bad_cbor(fw):
    payload = nfc(mint())
    assert_reason(fw.nfc(payload + b"\x00"), "BAD_CBOR")     # trailing byte
    assert_reason(fw.nfc(payload[:-10]), "BAD_CBOR")          # truncated
    assert_reason(fw.nfc(b"\x9f" + payload[1:]), "BAD_CBOR")  # indefinite-length array
    # the QR path too: a real token, non-shortest head for the outer array
    assert_reason(fw.qr("BRT1:" + T.b45encode(b"\x98\x02" + payload[1:])), "BAD_CBOR")


def _raw_map(pairs):
    """CBOR map bytes from raw (key bytes, value bytes) pairs: lets a test write what a
    strict encoder never would."""
    assert len(pairs) < 24
    return bytes([0xA0 + len(pairs)]) + b"".join(k + v for k, v in pairs)


def _pairs(c):
    return [(cbor2.dumps(k), cbor2.dumps(v, canonical=True)) for k, v in c.items()]


def _sloppy(pairs, key, raw):
    """pairs with key's value replaced by raw bytes."""
    kb = cbor2.dumps(key)
    return [(k, raw if k == kb else v) for k, v in pairs]


SLOPPY = [   # (what, the raw value of the category claim, or a whole-map mutation)
    ("non-shortest integer", b"\x18\x01"),
    ("float", b"\xf9\x3c\x00"),                 # 1.0 as a half float
    ("undefined", b"\xf7"),
    ("bad UTF-8", b"\x62\xff\xfe"),            # a text string that is not UTF-8
    ("tag", b"\xc1\x01"),
]


def test_strict_cbor_inside_the_signed_payloads(fw):
    # an issuer that signs sloppy CBOR: the signature is good, the payload is not strict
    # CBOR -> BAD_CBOR, not the claims' reason (docs/tokens.md "Reason precedence")
    base = _pairs(claims())
    for what, raw in SLOPPY:
        payload = _raw_map(_sloppy(base, fmt.C_CATEGORY, raw))
        p = T.cose_sign1(ISSUER, {1: -7, 4: T.kid(ISSUER)}, payload)
        assert_reason(fw.qr(qr(p), nocache=True), "BAD_CBOR"), what
    dup = _raw_map(base + [base[0]])                   # a repeated key
    p = T.cose_sign1(ISSUER, {1: -7, 4: T.kid(ISSUER)}, dup)
    assert_reason(fw.qr(qr(p), nocache=True), "BAD_CBOR")
    trailing = _raw_map(base) + b"\x00"
    p = T.cose_sign1(ISSUER, {1: -7, 4: T.kid(ISSUER)}, trailing)
    assert_reason(fw.qr(qr(p), nocache=True), "BAD_CBOR")
    # and in the proof's payload
    p = mint()
    ppairs = _pairs({1: T.pass_hash(p), 2: NOW, 3: 1})
    for what, raw in SLOPPY:
        pr = T.cose_sign1(PHONE, {1: -7}, _raw_map(_sloppy(ppairs, 3, raw)))
        assert_reason(fw.qr(T.qr_text(p, pr)), "BAD_CBOR"), what
    pr = T.cose_sign1(PHONE, {1: -7}, _raw_map(ppairs) + b"\x00")
    assert_reason(fw.qr(T.qr_text(p, pr)), "BAD_CBOR")
    # and in a protected header (its own CBOR part): alg -7 as a non-shortest integer
    sloppy_prot = b"\xa2\x01\x38\x06\x04\x48" + T.kid(ISSUER)
    p = T.cose_sign1(ISSUER, {1: -7, 4: T.kid(ISSUER)}, cbor2.dumps(claims(), canonical=True))
    arr = cbor2.loads(p)
    arr[0] = sloppy_prot
    assert_reason(fw.qr(qr(cbor2.dumps(arr)), nocache=True), "BAD_CBOR")


def test_unsigned_fields_are_uint32(fw):
    # every uint of a token is below 2^32 (docs/tokens.md "Numbers"); the host tools refuse
    # to mint more, and the validator refuses to believe more
    for field, v in (("C_ALLOWANCE", 2**32), ("C_EXP", 2**64 - 1), ("C_IAT", 2**32)):
        assert_reason(fw.qr(qr(signed_pass(claims(**{field: v}))), nocache=True),
                      "PASS_MALFORMED")
    assert fw.qr(qr(signed_pass(claims(C_ALLOWANCE=2**32 - 1))), nocache=True)["ok"]
    p = mint()
    for payload in ({1: T.pass_hash(p), 2: 2**32, 3: 1}, {1: T.pass_hash(p), 2: NOW, 3: 2**32}):
        assert_reason(fw.qr(T.qr_text(p, signed_proof(p, payload))), "PROOF_MALFORMED")


def test_reason_precedence_is_the_order_of_the_checks(fw):
    # two things wrong: the earlier check's reason wins (docs/tokens.md)
    forged_expired = mint(issuer=ISSUER2, iat=NOW - 9 * DAY, exp=NOW - DAY)  # unknown + expired
    assert_reason(fw.qr(qr(forged_expired), nocache=True), "UNKNOWN_KEY")
    bad_sig_bad_cat = signed_pass(claims(C_CATEGORY=9), key=ISSUER2,
                                  protected={1: -7, 4: T.kid(ISSUER)})
    assert_reason(fw.qr(qr(bad_sig_bad_cat), nocache=True), "BAD_SIGNATURE")
    p = mint(iat=NOW - 9 * DAY, exp=NOW - DAY)                  # expired + stale proof
    assert_reason(fw.qr(qr(p, time=NOW - 3600), nocache=True), "PASS_EXPIRED")
    p = mint()                                                  # proof signed by another key
    pr = T.make_proof(p, OTHER_PHONE, NOW - 3600, 1)            # + stale
    assert_reason(fw.qr(T.qr_text(p, pr), nocache=True), "PROOF_BAD_SIGNATURE")
    long_bad = "BRT2:" + "A" * 800                              # too large + bad prefix
    assert_reason(fw.qr(long_bad), "TOO_LARGE")


def test_bad_alg(fw):
    p = signed_pass(claims(), protected={1: -35, 4: T.kid(ISSUER)})
    assert_reason(fw.qr(qr(p)), "BAD_ALG")
    p = signed_pass(claims(), protected={1: -7})  # no kid
    assert_reason(fw.qr(qr(p)), "BAD_ALG")


def test_unknown_key(fw):
    assert_reason(fw.qr(qr(mint(issuer=ISSUER2))), "UNKNOWN_KEY")


def test_key_validity_and_usage(fw):
    p = mint()
    t = trust_body([(ISSUER, NOW + 10, NOW + 100 * DAY, 1)])
    assert_reason(fw.qr(qr(p), trust=t), "KEY_NOT_YET_VALID")
    t = trust_body([(ISSUER, NOW - 100 * DAY, NOW, 1)])
    assert_reason(fw.qr(qr(p), trust=t), "KEY_EXPIRED")
    t = trust_body([(ISSUER, NOW - 100 * DAY, NOW + 100 * DAY, 2)])
    assert_reason(fw.qr(qr(p), trust=t), "KEY_USAGE")


def test_bad_signature(fw):
    p = bytearray(mint(wallet=b"SIGFLIP1"))
    p[-1] ^= 0x01  # last byte of the pass is the last byte of its signature
    assert_reason(fw.qr(qr(bytes(p)), nocache=True), "BAD_SIGNATURE")
    p = bytearray(mint(wallet=b"SIGFLIP2"))
    i = bytes(p).index(b"SIGFLIP2")
    p[i] ^= 0x20  # a claim changed after signing
    assert_reason(fw.qr(qr(bytes(p))), "BAD_SIGNATURE")


def test_pass_malformed(fw):
    assert_reason(fw.qr(qr(signed_pass(claims(C_OPERATOR=None)))), "PASS_MALFORMED")
    assert_reason(fw.qr(qr(signed_pass(claims(C_EXP="tomorrow")))), "PASS_MALFORMED")
    assert_reason(fw.qr(qr(signed_pass(claims(C_WALLET=b"ab")))), "PASS_MALFORMED")


def test_pass_expired_and_not_yet_valid(fw):
    assert_reason(fw.qr(qr(mint(exp=NOW))), "PASS_EXPIRED")
    assert_reason(fw.qr(qr(mint(iat=NOW + 301, exp=NOW + DAY))), "PASS_NOT_YET_VALID")
    # within the skew allowance
    assert fw.qr(qr(mint(iat=NOW + 299, exp=NOW + DAY)))["ok"]


def test_wrong_operator(fw):
    assert_reason(fw.qr(qr(mint(operator="XYZ"))), "WRONG_OPERATOR")


def test_bad_cnf_key(fw):
    x = 0
    while True:  # an x with no curve point
        x += 1
        P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
        B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
        a = (x ** 3 - 3 * x + B) % P
        if pow(a, (P - 1) // 2, P) != 1:
            break
    cnf = {1: {1: 2, -1: 1, -2: x.to_bytes(32, "big"), -3: False}}
    assert_reason(fw.qr(qr(signed_pass(claims(C_CNF=cnf)))), "BAD_CNF_KEY")
    cnf = {1: {1: 2, -1: 1, -2: T.public_bytes(PHONE)[1:33], -3: T.public_bytes(PHONE)[33:]}}
    assert_reason(fw.qr(qr(signed_pass(claims(C_CNF=cnf)))), "BAD_CNF_KEY")  # uncompressed y


def test_bad_category(fw):
    assert_reason(fw.qr(qr(signed_pass(claims(C_CATEGORY=6)))), "BAD_CATEGORY")


def test_proof_malformed(fw):
    p = mint()
    pr = signed_proof(p, {1: T.pass_hash(p), 2: NOW})  # no counter
    assert_reason(fw.qr(T.qr_text(p, pr)), "PROOF_MALFORMED")
    pr = signed_proof(p, {1: T.pass_hash(p), 2: NOW, 3: 1, 9: 0})  # unknown field
    assert_reason(fw.qr(T.qr_text(p, pr)), "PROOF_MALFORMED")


def test_proof_bad_signature(fw):
    p = mint()
    pr = T.make_proof(p, OTHER_PHONE, NOW, 1)
    assert_reason(fw.qr(T.qr_text(p, pr)), "PROOF_BAD_SIGNATURE")


def test_proof_for_another_pass(fw):
    p1, p2 = mint(), mint(pass_id=b"PASS0002")
    assert_reason(fw.qr(T.qr_text(p1, T.make_proof(p2, PHONE, NOW, 1))), "PROOF_WRONG_PASS")


def test_qr_freshness_window(fw):
    p = mint()
    assert_reason(fw.qr(qr(p, time=NOW - 31)), "PROOF_STALE")
    assert_reason(fw.qr(qr(p, time=NOW + 31)), "PROOF_FUTURE")
    assert fw.qr(qr(p, time=NOW - 30))["ok"] and fw.qr(qr(p, time=NOW + 30))["ok"]
    # the window is configurable
    assert_reason(fw.qr(qr(p, time=NOW - 10), window=5), "PROOF_STALE")


def test_challenge_mismatch_and_channel(fw):
    p = mint()
    assert_reason(fw.nfc(nfc(p), challenge=bytes(16)), "CHALLENGE_MISMATCH")
    qr_proof = T.make_proof(p, PHONE, NOW, 1)
    assert_reason(fw.nfc(T.nfc_payload(p, qr_proof)), "PROOF_CHANNEL")
    nfc_proof = T.make_proof(p, PHONE, NOW, 1, CHALLENGE)
    assert_reason(fw.qr(T.qr_text(p, nfc_proof)), "PROOF_CHANNEL")


def test_clock_untrusted(fw):
    p = mint()
    v = fw.qr(qr(p), clock_ok=False, now=0)
    assert_reason(v, "CLOCK_UNTRUSTED")
    assert v["wallet_id"] == b"WALLET01".hex()  # claims still there for the tap record
    # NFC keeps working with an untrusted clock; validity is judged at the proof time
    v = fw.nfc(nfc(p, time=NOW + 5), clock_ok=False, now=0)
    assert v["ok"] and v["proof_time"] == NOW + 5
    assert_reason(fw.nfc(nfc(p, time=NOW + 8 * DAY), clock_ok=False, now=0), "PASS_EXPIRED")


def test_internal_error_from_real_token_when_memory_runs_out(fw):
    # a real token while the heap is nearly full: the verifier must answer INTERNAL (and
    # the worker live on), never let MemoryError escape; afterwards the same token passes
    text = qr(mint(wallet=b"MEMTEST1"))
    fw.qr(qr(mint()))  # verifier and G tables built while memory is plentiful
    ans = fw.qr(text, nocache=True, leave=0)  # every free block taken
    assert ans["free_squeezed"] < 512, ans  # the squeeze really left (almost) nothing
    assert_reason(ans, "INTERNAL")
    assert "memory" in ans["detail"]
    assert fw.qr(text)["ok"]


def test_every_token_reason_code_is_covered():
    src = open(__file__).read()
    for name in R:
        if name in ("OK",):
            continue
        assert '"%s"' % name in src, "no test produces %s" % name


def test_nfc_exchange_end_to_end_with_firmware_apdu_helper(tmp_path):
    # the phone's HCE side (host/tokens PhoneCard) answering the validator's APDU code
    # (firmware/tokens/apdu.py) line by line; the chained answer is then verified
    p = mint()
    card = T.PhoneCard(lambda ch: nfc(p, challenge=bytes(ch)))
    script = tmp_path / "nfc_mp.py"
    script.write_text(
        "import sys\nfrom binascii import hexlify, unhexlify\nfrom tokens import apdu\n"
        "def ex(cmd):\n"
        "    print('C', hexlify(bytes(cmd)).decode())\n"
        "    return unhexlify(sys.stdin.readline().strip())\n"
        "sys.stdin.readline()\n"
        "v = apdu.select(ex)\n"
        "data = apdu.read_token(ex, bytes(range(16)))\n"
        "print('D', v, hexlify(bytes(data)).decode())\n")
    w = MPWorker(script)
    cmds = []
    try:
        line = w.ask("go")
        while line.startswith("C "):
            cmd = bytes.fromhex(line[2:])
            cmds.append(cmd)
            line = w.ask(card.process(cmd).hex())
    finally:
        w.close()
    assert cmds[0] == bytes.fromhex("00A4040005F04252543100")
    assert cmds[1] == bytes.fromhex("8054000010") + CHALLENGE + b"\x00"
    assert cmds[2][:4] == bytes.fromhex("00C00000") and len(cmds) == 3  # one GET RESPONSE
    _, version, data = line.split(" ")
    assert version == "1"
    payload = bytes.fromhex(data)
    assert len(payload) > fmt.CHUNK and T.split_token(payload)[0] == p
    v = Verifier()
    try:
        assert v.nfc(payload)["ok"]
    finally:
        v.close()
