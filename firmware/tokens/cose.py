# COSE_Sign1 (RFC 9052) as this format uses it: untagged [protected bstr, {} , payload bstr,
# signature bstr(64)], alg ES256 in the protected header. The signature is over the
# Sig_structure ["Signature1", protected, h'', payload], hashed here piece by piece
# (no copy of the payload is made to build it).
import hashlib

from tokens import cbor, fmt, p256
from tokens.errors import TokenError
from tokens.reasons import BAD_ALG, MALFORMED

_SIG1 = b"\x84\x6aSignature1"  # array(4), tstr(10) "Signature1"


def parse(arr, with_kid):
    """(protected bytes, payload bytes, signature bytes, kid or None) of a decoded
    COSE_Sign1 array; TokenError(MALFORMED / BAD_ALG) if it is not one of ours."""
    if not isinstance(arr, list) or len(arr) != 4:
        raise TokenError(MALFORMED, "not a COSE_Sign1 array")
    prot, unprot, payload, sig = arr
    if not isinstance(prot, bytes) or not isinstance(payload, bytes) or \
            not isinstance(sig, bytes) or not isinstance(unprot, dict):
        raise TokenError(MALFORMED, "COSE_Sign1 field types")
    if unprot:
        raise TokenError(MALFORMED, "unprotected header must be empty")
    if len(sig) != 64:
        raise TokenError(MALFORMED, "signature length")
    h = cbor.loads(prot)   # a CBOR part of its own: not strict CBOR is BAD_CBOR
    if not isinstance(h, dict) or h.get(fmt.H_ALG) != fmt.ALG_ES256:
        raise TokenError(BAD_ALG, "alg")
    kid = None
    if with_kid:
        kid = h.get(fmt.H_KID)
        if not isinstance(kid, bytes) or len(kid) != fmt.KID_LEN or len(h) != 2:
            raise TokenError(BAD_ALG, "kid")
    elif len(h) != 1:
        raise TokenError(BAD_ALG, "extra header")
    return prot, payload, sig, kid


def sig_digest(prot, payload):
    """SHA-256 of the Sig_structure (external_aad empty)."""
    h = hashlib.sha256(_SIG1)
    h.update(cbor.head(2, len(prot)))
    h.update(prot)
    h.update(b"\x40")
    h.update(cbor.head(2, len(payload)))
    h.update(payload)
    return h.digest()


def sig_digest_at(mv, o, i):
    """sig_digest of the Sign1 whose offsets tokens/scan.py put at o[i:i+7], hashed from
    the token's bytes: there the protected header and the payload already sit behind
    their heads, with the empty map (A0) between them where the Sig_structure has h''
    (40), so no head is built."""
    h = hashlib.sha256(_SIG1)
    h.update(mv[o[i] + 1:o[i + 2]])       # head and protected bytes
    h.update(b"\x40")
    h.update(mv[o[i + 2] + 1:o[i + 4]])   # head and payload bytes
    return h.digest()


def low_s_id(sig):
    """Proof id: first 16 bytes of SHA-256 of the signature in low-S form (r||min(s, n-s)).
    ECDSA signatures are malleable — (r, n-s) verifies too — so the id is taken over the
    one canonical form, or a replayer could mint a 'new' proof id by flipping s."""
    if not p256.high_s(sig):
        return hashlib.sha256(sig).digest()[:16]   # already low-S: the bytes as they are
    h = hashlib.sha256(sig[0:32])
    h.update((p256.N - int.from_bytes(sig[32:64], "big")).to_bytes(32, "big"))
    return h.digest()[:16]
