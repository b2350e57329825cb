# COSE_Sign1 (RFC 9052) as this format uses it: untagged [protected bstr, {} , payload bstr,
# signature bstr(64)], alg ES256 in the protected header. The signature is over the
# Sig_structure ["Signature1", protected, h'', payload], hashed here from the token's own
# bytes (no copy of the payload is made to build it). What the usual tap needs only: the
# general path's COSE parsing and digest (decoded parts) are in tokens/general.py.
import hashlib

from tokens import p256

SIG1 = b"\x84\x6aSignature1"  # array(4), tstr(10) "Signature1"


def sig_digest_at(mv, o, i):
    """general.sig_digest of the Sign1 whose offsets tokens/scan.py put at o[i:i+7], hashed from
    the token's bytes: there the protected header and the payload already sit behind
    their heads, with the empty map (A0) between them where the Sig_structure has h''
    (40), so no head is built."""
    h = hashlib.sha256(SIG1)
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
