"""Host token tools (CPython): keys, wallet passes, tap proofs, QR text/PNG, NFC APDUs.

The format is specified in docs/tokens.md; the firmware's verifier (firmware/tokens/) is an
independent implementation of it. Everything here uses `cryptography` and `cbor2`.

Keys (P-256; `cryptography` EllipticCurvePrivateKey objects):
    generate_key() -> key                 issuer, operator and phone keys alike
    key_from_int(d) -> key                deterministic key (tests, fixtures)
    save_key(key, path) / load_key(path)  unencrypted PKCS#8 PEM (mode 0600)
    public_bytes(key) -> bytes            65-byte uncompressed point 04||x||y
    public_key_from_bytes(pub65) -> public key object
    kid(pub65_or_key) -> bytes            first 8 bytes of SHA-256 of the 65-byte point
    sign_es256(private_key, data) -> 64-byte r||s (SHA-256 of data inside; low-S form)
    verify_es256(pub, data, sig64) -> bool

Tokens:
    mint_pass(issuer_key, phone_pub, wallet_id, pass_id, category, allowance, iat, exp,
              operator="TSM", issuer="BRTW") -> pass bytes (COSE_Sign1)
    make_proof(pass_bytes, phone_key, time, counter, challenge=None) -> proof bytes
              (challenge: the validator's 16 bytes for NFC; None for QR)
    encode_token(pass, proof) -> CBOR [pass, proof] bytes
    qr_text(pass, proof) -> str           "BRT1:" + base45(CBOR [pass, proof])
    nfc_payload(pass, proof) -> bytes     what the phone answers to the tap command
    pass_hash(pass) -> 16 bytes           what a proof binds
    proof_id(proof) -> 16 bytes           as journaled: SHA-256 of the low-S signature
    split_token(qr_text_or_bytes) -> (pass bytes, proof bytes)
    inspect_token(token, keys=None) -> dict   decoded claims; with keys={kid: pub65}
              also 'pass_sig_ok' / 'proof_sig_ok' (no acceptance decision)
    b45encode(bytes) -> str / b45decode(str) -> bytes

NFC (ISO 7816-4 APDUs; see apdu.py for the exact bytes):
    AID, select_apdu(), tap_apdu(challenge16), get_response_apdu(le)
    split_response(data, chunk=250) -> [response APDUs]  (61 xx chaining, last 90 00)
    parse_response(resp) -> (data, sw); join_responses(first, exchange) -> data
    PhoneCard(answer).process(apdu) -> response   (the phone's HCE side)

QR: qr_version(text) -> int; save_png(text, path); make_qr(text) -> segno QR code.

Errors: every bad input raises TokenToolError (one-line message).
CLI: python -m host.tokens --help
"""

from .apdu import (PhoneCard, get_response_apdu, join_responses, parse_response,
                   select_apdu, split_response, tap_apdu)
from .base45 import b45decode, b45encode
from .errors import TokenToolError
from .fmt import AID, CHUNK, PREFIX
from .keys import (generate_key, key_from_int, kid, load_key, low_s, public_bytes,
                   public_key_from_bytes, save_key, sign_es256, verify_es256)
from .qr import make_qr, qr_version, save_png
from .token import (cose_sign1, encode_token, inspect_token, make_proof, mint_pass,
                    nfc_payload, pass_hash, proof_id, qr_text, split_token)

__all__ = [
    "AID", "CHUNK", "PREFIX", "PhoneCard", "TokenToolError", "b45decode", "b45encode",
    "cose_sign1", "encode_token", "generate_key", "get_response_apdu", "inspect_token",
    "join_responses", "key_from_int", "kid", "load_key", "low_s", "make_proof", "make_qr",
    "mint_pass", "nfc_payload", "parse_response", "pass_hash", "proof_id", "public_bytes",
    "public_key_from_bytes", "qr_text", "qr_version", "save_key", "save_png", "select_apdu",
    "sign_es256", "split_response", "split_token", "tap_apdu", "verify_es256",
]
