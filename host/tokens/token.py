"""Minting wallet passes and tap proofs; the QR text and NFC payload; decoding for inspection.

Encoding uses cbor2 with canonical=True, so the bytes are the deterministic encoding the
firmware's strict decoder accepts (shortest integers and lengths, definite lengths).
"""

import hashlib

import cbor2

from . import fmt
from .base45 import b45decode, b45encode
from .errors import TokenToolError
from .keys import kid as _kid, low_s, public_bytes, sign_es256, verify_es256


def _dumps(obj):
    return cbor2.dumps(obj, canonical=True)


def _sig_structure(protected, payload, external_aad=b""):
    return _dumps(["Signature1", protected, external_aad, payload])


def cose_sign1(key, protected, payload):
    """COSE_Sign1 (untagged) with an empty unprotected header, as CBOR bytes."""
    prot = _dumps(protected)
    sig = sign_es256(key, _sig_structure(prot, payload))
    return _dumps([prot, {}, payload, sig])


def _check_id(name, v):
    if not isinstance(v, (bytes, bytearray)) or not fmt.ID_LEN_MIN <= len(v) <= fmt.ID_LEN_MAX:
        raise TokenToolError("%s must be %d..%d bytes" % (name, fmt.ID_LEN_MIN, fmt.ID_LEN_MAX))


def mint_pass(issuer_key, phone_pub, wallet_id, pass_id, category, allowance, iat, exp,
              operator="TSM", issuer="BRTW"):
    """A wallet pass: COSE_Sign1 bytes signed by `issuer_key` (kid in the protected header).

    phone_pub: the phone's public key (65 bytes or key object) bound as `cnf`;
    wallet_id, pass_id: 4..16 bytes; category 0..5; allowance: offline allowance in rupiah;
    iat, exp: Unix seconds.
    """
    _check_id("wallet id", wallet_id)
    _check_id("pass id", pass_id)
    if isinstance(category, bool) or category not in fmt.CATEGORIES:
        raise TokenToolError("fare category must be one of %s" % (fmt.CATEGORIES,))
    for name, v in (("allowance", allowance), ("iat", iat), ("exp", exp)):
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 2**32:
            raise TokenToolError("%s must be an integer 0..2^32-1" % name)
    if exp <= iat:
        raise TokenToolError("exp must be after iat")
    if not operator or len(operator.encode()) > fmt.OPERATOR_MAX:
        raise TokenToolError("operator id must be 1..%d bytes" % fmt.OPERATOR_MAX)
    if len(issuer.encode()) > fmt.ISS_MAX:
        raise TokenToolError("issuer name longer than %d bytes" % fmt.ISS_MAX)
    if not isinstance(phone_pub, (bytes, bytearray)):
        phone_pub = public_bytes(phone_pub)
    if len(phone_pub) != 65 or phone_pub[0] != 4:
        raise TokenToolError("phone public key must be 65 bytes 04||x||y")
    cose_key = {fmt.K_KTY: fmt.KTY_EC2, fmt.K_CRV: fmt.CRV_P256,
                fmt.K_X: bytes(phone_pub[1:33]), fmt.K_Y: bool(phone_pub[64] & 1)}
    claims = {fmt.C_ISS: issuer, fmt.C_EXP: exp, fmt.C_IAT: iat,
              fmt.C_CNF: {fmt.CNF_COSE_KEY: cose_key},
              fmt.C_WALLET: bytes(wallet_id), fmt.C_PASS: bytes(pass_id),
              fmt.C_CATEGORY: category, fmt.C_ALLOWANCE: allowance,
              fmt.C_OPERATOR: operator}
    protected = {fmt.H_ALG: fmt.ALG_ES256, fmt.H_KID: _kid(issuer_key.public_key())}
    return cose_sign1(issuer_key, protected, _dumps(claims))


def pass_hash(pass_bytes):
    """What a proof binds: the first 16 bytes of SHA-256 of the pass's exact bytes."""
    return hashlib.sha256(bytes(pass_bytes)).digest()[:fmt.PASS_HASH_LEN]


def make_proof(pass_bytes, phone_key, time, counter, challenge=None):
    """A tap proof signed by the phone: binds the pass hash, time, counter and (NFC) the
    validator's 16-byte challenge."""
    if not isinstance(time, int) or not 0 <= time < 2**32:
        raise TokenToolError("proof time must be Unix seconds 0..2^32-1")
    if not isinstance(counter, int) or not 0 <= counter < 2**32:
        raise TokenToolError("counter must be 0..2^32-1")
    payload = {fmt.P_PASS_HASH: pass_hash(pass_bytes), fmt.P_TIME: time,
               fmt.P_COUNTER: counter}
    if challenge is not None:
        if len(challenge) != fmt.CHALLENGE_LEN:
            raise TokenToolError("challenge must be %d bytes" % fmt.CHALLENGE_LEN)
        payload[fmt.P_CHALLENGE] = bytes(challenge)
    return cose_sign1(phone_key, {fmt.H_ALG: fmt.ALG_ES256}, _dumps(payload))


def encode_token(pass_bytes, proof_bytes):
    """CBOR [pass, proof]: both COSE_Sign1 arrays embedded as they are (not re-encoded)."""
    return b"\x82" + bytes(pass_bytes) + bytes(proof_bytes)


def nfc_payload(pass_bytes, proof_bytes):
    """What the phone returns to the tap command (before response chaining)."""
    return encode_token(pass_bytes, proof_bytes)


def qr_text(pass_bytes, proof_bytes):
    """QR text: 'BRT1:' + base45 of CBOR [pass, proof] (all in the QR alphanumeric set)."""
    return fmt.PREFIX + b45encode(encode_token(pass_bytes, proof_bytes))


def proof_id(proof_bytes):
    """Proof id as the validator journals it: SHA-256 of the low-S signature, 16 bytes."""
    sig = cbor2.loads(bytes(proof_bytes))[3]
    return hashlib.sha256(low_s(sig)).digest()[:16]


def split_token(token):
    """(pass_bytes, proof_bytes) from CBOR [pass, proof] bytes or QR text."""
    if isinstance(token, str):
        if not token.startswith(fmt.PREFIX):
            raise TokenToolError("QR text does not start with %r" % fmt.PREFIX)
        token = b45decode(token[len(fmt.PREFIX):].rstrip("\r\n"))
    token = bytes(token)
    try:
        arr = cbor2.loads(token)
    except Exception as e:  # cbor2 raises several types for malformed input
        raise TokenToolError("token is not valid CBOR: %s" % e) from None
    if not isinstance(arr, list) or len(arr) != 2:
        raise TokenToolError("a token is a CBOR array of 2 items [pass, proof]")
    # the pass hash is over the pass's exact bytes: recover them by canonical re-encoding
    # and insist that this reproduces the token (a non-canonical token is refused anyway)
    pass_b, proof_b = _dumps(arr[0]), _dumps(arr[1])
    if encode_token(pass_b, proof_b) != token:
        raise TokenToolError("token is not canonical CBOR")
    return pass_b, proof_b


def _parse_sign1(b, what):
    try:
        arr = cbor2.loads(b)
        prot_b, unprot, payload, sig = arr
        prot = cbor2.loads(prot_b)
        body = cbor2.loads(payload)
    except Exception as e:
        raise TokenToolError("%s is not a COSE_Sign1: %s" % (what, e)) from None
    return prot_b, prot, unprot, payload, body, sig


def inspect_token(token, keys=None, pass_keys=None):
    """Decode a token (QR text or CBOR bytes) into a dict, for people and the back office.

    keys: optional {kid: pub65} of issuer keys; when given, the pass signature is checked
    ('pass_sig_ok'), and the proof signature with the pass's cnf key ('proof_sig_ok').
    Nothing here decides acceptance — that is the validator's job.
    """
    pass_b, proof_b = split_token(token)
    pprot_b, pprot, _, ppay, claims, psig = _parse_sign1(pass_b, "pass")
    rprot_b, _, _, rpay, proof, rsig = _parse_sign1(proof_b, "proof")
    ck = claims.get(fmt.C_CNF, {}).get(fmt.CNF_COSE_KEY, {})
    out = {
        "kid": pprot.get(fmt.H_KID, b"").hex(),
        "pass": {"iss": claims.get(fmt.C_ISS), "iat": claims.get(fmt.C_IAT),
                 "exp": claims.get(fmt.C_EXP),
                 "wallet_id": claims.get(fmt.C_WALLET, b"").hex(),
                 "pass_id": claims.get(fmt.C_PASS, b"").hex(),
                 "category": claims.get(fmt.C_CATEGORY),
                 "allowance": claims.get(fmt.C_ALLOWANCE),
                 "operator": claims.get(fmt.C_OPERATOR),
                 "cnf_x": ck.get(fmt.K_X, b"").hex(), "cnf_y_odd": ck.get(fmt.K_Y)},
        "proof": {"pass_hash": proof.get(fmt.P_PASS_HASH, b"").hex(),
                  "time": proof.get(fmt.P_TIME), "counter": proof.get(fmt.P_COUNTER),
                  "challenge": (proof[fmt.P_CHALLENGE].hex()
                                if fmt.P_CHALLENGE in proof else None)},
        "pass_hash": pass_hash(pass_b).hex(),
        "binds_pass": proof.get(fmt.P_PASS_HASH) == pass_hash(pass_b),
        "proof_id": hashlib.sha256(low_s(rsig)).digest()[:16].hex() if len(rsig) == 64 else None,
        "sizes": {"pass": len(pass_b), "proof": len(proof_b),
                  "token": 1 + len(pass_b) + len(proof_b)},
    }
    if keys is not None:
        pub = keys.get(pprot.get(fmt.H_KID))
        out["pass_sig_ok"] = bool(pub) and verify_es256(pub, _sig_structure(pprot_b, ppay), psig)
        phone = cnf_public_bytes(ck)
        out["proof_sig_ok"] = bool(phone) and verify_es256(
            phone, _sig_structure(rprot_b, rpay), rsig)
    return out


def cnf_public_bytes(cose_key):
    """65-byte point from the pass's compressed COSE_Key, or None if it is not one."""
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives import serialization
    x, y = cose_key.get(fmt.K_X), cose_key.get(fmt.K_Y)
    if not isinstance(x, bytes) or len(x) != 32 or not isinstance(y, bool):
        return None
    try:
        pub = ec.EllipticCurvePublicKey.from_encoded_point(
            ec.SECP256R1(), bytes([3 if y else 2]) + x)
    except ValueError:
        return None
    return pub.public_bytes(serialization.Encoding.X962,
                            serialization.PublicFormat.UncompressedPoint)
