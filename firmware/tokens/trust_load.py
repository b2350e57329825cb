# Trust lists parsed and checked (tokens/trust.py holds the store a tap reads): the body
# of the operator-signed trust-list bundle (docs/bundles.md), a CBOR array of
# [kid bstr(8), pubkey bstr(65), not_before uint, not_after uint, usage uint]. Each key is
# checked once here (kid = SHA-256(pubkey)[:8], on the curve) so a tap never pays for it.
# Boot and depot code: TrustStore.from_body imports it, boot forgets it (app/state.py).
import hashlib

from tokens import fmt, p256
from tokens.errors import TokenError
from tokens.reasons import MALFORMED
from tokens.trust import MAX_KEYS, IssuerKey


def from_body(cls, body):
    """TrustStore from a trust-list bundle body; TokenError(MALFORMED) if invalid."""
    from tokens import cbor  # here only: a tap needs no CBOR decoder (tokens/verify.py)
    try:
        rows = cbor.loads(body, max_depth=2, max_items=1 + 6 * MAX_KEYS)
    except TokenError as e:
        raise TokenError(MALFORMED, "trust list: " + str(e.detail))
    if not isinstance(rows, list) or len(rows) > MAX_KEYS:
        raise TokenError(MALFORMED, "trust list: not an array of at most %d" % MAX_KEYS)
    keys = []
    for row in rows:
        keys.append(key_from_row(row))
    st = cls(keys)
    if len(st._keys) != len(keys):
        raise TokenError(MALFORMED, "trust list: duplicate kid")
    return st


def key_from_row(row):
    if not isinstance(row, list) or len(row) != 5:
        raise TokenError(MALFORMED, "trust list: row is not [kid, pub, nb, na, usage]")
    kid, pub, nb, na, usage = row
    if not isinstance(kid, bytes) or len(kid) != fmt.KID_LEN or \
            not isinstance(pub, bytes) or len(pub) != 65:
        raise TokenError(MALFORMED, "trust list: kid/pubkey size")
    for v in (nb, na, usage):
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise TokenError(MALFORMED, "trust list: validity/usage type")
    # docs/ranges.md: validity times are u32, before < after; usage a byte
    if nb > 0xFFFFFFFF or na > 0xFFFFFFFF or nb >= na or usage > 255:
        raise TokenError(MALFORMED, "trust list: validity/usage out of range")
    if hashlib.sha256(pub).digest()[:8] != kid:
        raise TokenError(MALFORMED, "trust list: kid is not SHA-256(pubkey)[:8]")
    q = p256.decode_point(pub)
    if q is None:
        raise TokenError(MALFORMED, "trust list: public key not on P-256")
    return IssuerKey(kid, pub, q[0], q[1], nb, na, usage)
