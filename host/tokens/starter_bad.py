"""The starter pack's refused cases: one per reason code a wallet can cause (docs/tokens.md
reasons 1-24, the app's 40, 42, 43 and the reader's 47 for a broken phone-side limit), and
a wrong SELECT answer (reason 1 again, the NFC exchange's own limit).

Each is built the way a wallet bug makes it - a real pass re-signed after one change, a
proof over the wrong bytes - so a partner sees what the validator says about that bug.
Reasons checked before the proof's freshness are fixed files (their proofs are stale by
the time they run, which does not matter); the rest mint their proof at run time.
"""

import cbor2
from cryptography.hazmat.primitives.asymmetric import ec

from . import fmt, keys, token
from .base45 import b45encode

DAY = 86400


def _resign(pass_bytes, key, claims_edit=None, protected=None):
    """The same pass with its claims edited (or protected header replaced), re-signed."""
    prot_b, _, payload, _ = cbor2.loads(pass_bytes)
    claims = cbor2.loads(payload)
    if claims_edit:
        claims_edit(claims)
    prot = cbor2.loads(prot_b) if protected is None else protected
    return token.cose_sign1(key, prot, cbor2.dumps(claims, canonical=True))


def _proof_payload(pass_bytes, phone, payload):
    return token.cose_sign1(phone, {fmt.H_ALG: fmt.ALG_ES256}, cbor2.dumps(payload,
                                                                           canonical=True))


def _off_curve_x():
    """An x with no point on P-256 (neither y parity): a phone key that cannot exist."""
    for i in range(2, 1000):
        x = i.to_bytes(32, "big")
        try:
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x02" + x)
        except ValueError:
            return x
    raise AssertionError("no off-curve x found")


def add_rejections(pack):
    n = pack.now
    iss = pack.issuers["issuer"]
    good, phone = pack.mint()
    proof = token.make_proof(good, phone, n, 1)

    def qr(p, pr=None):
        return token.qr_text(p, pr if pr is not None else token.make_proof(p, phone, n, 1))

    text = qr(good, proof)
    tok = token.encode_token(good, proof)
    q, nf = pack.qr_case, pack.nfc_case
    q("malformed-one-item", fmt.PREFIX + b45encode(cbor2.dumps([cbor2.loads(good)])),
      1, "token is [pass] without its proof")
    nf("too-large", b"\x82" + good + cbor2.dumps(bytes(400)), 2,
       "NFC answer of more than 512 bytes (a proof padded to 400 bytes)")
    q("bad-prefix", "BRT2:" + text[len(fmt.PREFIX):], 3, "scheme prefix BRT2: not BRT1:")
    q("bad-base45", fmt.PREFIX + ":::" + text[len(fmt.PREFIX):], 4,
      "base45 group ':::' worth 91124, over 65535")
    q("bad-cbor", fmt.PREFIX + b45encode(b"\x98\x02" + tok[1:]), 5,
      "array length written in two bytes (not the shortest form)")
    q("bad-algorithm", qr(_resign(good, iss, protected={fmt.H_ALG: -35,
                                                        fmt.H_KID: keys.kid(iss)})),
      6, "pass protected header says ES384 (-35)")
    for name, reason, about in (("unknown", 7, "pass signed by a key not in the keys folder"),
                                ("future", 8, "issuer key whose validity starts in 400 days"),
                                ("retired", 9, "issuer key whose validity ended yesterday"),
                                ("no-usage", 10, "issuer key without usage bit 1 (pass)")):
        p, _ = pack.mint(issuer=name, phone=phone)
        q("key-" + name, qr(p), reason, about)
    sig_flipped = bytearray(good)
    sig_flipped[-40] ^= 0x01                    # inside r: still a well-formed signature
    q("bad-signature", qr(bytes(sig_flipped)), 11, "one bit of the pass signature changed")
    q("pass-malformed", qr(_resign(good, iss, lambda c: c.pop(fmt.C_OPERATOR))), 12,
      "pass without its operator claim (-5)")
    p, _ = pack.mint(phone=phone, iat=n - 8 * DAY, exp=n - DAY)
    q("pass-expired", qr(p), 13, "pass expired yesterday")
    p, _ = pack.mint(phone=phone, iat=n + 365 * DAY, exp=n + 400 * DAY)
    q("pass-not-yet-valid", qr(p), 14, "pass issued (iat) a year from now")
    p, _ = pack.mint(phone=phone, operator="XYZ")
    q("wrong-operator", qr(p), 15, "pass for operator XYZ, not TSM")

    def bad_cnf(c):
        c[fmt.C_CNF] = {fmt.CNF_COSE_KEY: {1: 2, -1: 1, -2: _off_curve_x(), -3: False}}
    q("bad-phone-key", qr(_resign(good, iss, bad_cnf)), 16, "cnf x is not on P-256")
    q("bad-category", qr(_resign(good, iss, lambda c: c.update({fmt.C_CATEGORY: 6}))), 17,
      "fare category 6")
    q("proof-malformed", qr(good, _proof_payload(good, phone, {
        fmt.P_PASS_HASH: token.pass_hash(good), fmt.P_TIME: n})), 18, "proof without counter")
    q("proof-bad-signature", qr(good, token.make_proof(good, keys.generate_key(), n, 1)), 19,
      "proof signed by another key than the pass's cnf")
    other, _ = pack.mint(phone=phone)
    q("proof-other-pass", qr(good, token.make_proof(other, phone, n, 1)), 20,
      "proof binds another pass of the same phone")
    rt = pack.runtime_case
    rt("qr-stale", "qr", 21, "QR proof made 60 s before the tap (window 30 s)",
       proof_time=-60)
    rt("qr-future", "qr", 22, "QR proof time 60 s after the tap (phone clock ahead)",
       proof_time=60)
    rt("nfc-other-challenge", "nfc", 23, "NFC proof signs sixteen zero bytes, not the "
       "validator's challenge", challenge="00" * 16)
    rt("nfc-no-challenge", "nfc", 24, "NFC answer carrying a QR-style proof (no challenge)",
       challenge="none")
    rt("qr-replay", "qr", ["accepted", "replay"], "the same QR code shown twice",
       same_proof=True)
    rt("qr-twice", "qr", ["accepted", "already-paid"], "the same wallet twice within a "
       "minute, each time a fresh code: no second charge")
    rt("allowance-too-small", "qr", 43, "regular fare Rp 3,500 against an offline allowance "
       "of Rp 1,000", mint={"allowance": 1000})
    rt("nfc-one-response", "nfc", 47, "the whole answer in one response APDU (chunk 300): "
       "over the reader's limit", chunk=300)
    rt("nfc-select-no-version", "nfc", 1, "the wallet app answers SELECT with 90 00 only, "
       "without its format version byte", select_answer="9000")
    pad = b45encode(b"\x00" * 530)           # 800 characters with the prefix
    q("qr-too-long", fmt.PREFIX + pad, 2, "QR text of %d characters, over the %d the "
      "format and the scanner line allow" % (len(fmt.PREFIX) + len(pad), fmt.MAX_QR_TEXT))
