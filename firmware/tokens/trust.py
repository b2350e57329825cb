# The trust store: issuer keys by kid, with validity periods and key usage, built from the
# body of the operator-signed trust-list bundle (docs/bundles.md): a CBOR array of
# [kid bstr(8), pubkey bstr(65), not_before uint, not_after uint, usage uint].
# Each key is checked once here (kid = SHA-256(pubkey)[:8], on the curve) so a tap never
# pays for it; a prepared form for fast verification is built lazily on first use.
import hashlib

from tokens import fmt, p256
from tokens.errors import TokenError
from tokens.reasons import MALFORMED

MAX_KEYS = 32


class IssuerKey:
    def __init__(self, kid, pub, x, y, not_before, not_after, usage):
        self.kid = kid
        self.pub = pub
        self.x = x
        self.y = y
        self.not_before = not_before
        self.not_after = not_after
        self.usage = usage
        self.prepared = None  # p256 precomputation (2 KB): TrustStore.prepare() or first use

    def can_sign_passes(self):
        return bool(self.usage & fmt.USAGE_PASS)

    def valid_at(self, t):
        """0 valid, -1 not yet valid, 1 expired (not_after is exclusive)."""
        if t < self.not_before:
            return -1
        if t >= self.not_after:
            return 1
        return 0


class TrustStore:
    def __init__(self, keys=()):
        self._keys = {}
        for k in keys:
            self._keys[k.kid] = k

    @classmethod
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
            keys.append(cls.key_from_row(row))
        st = cls(keys)
        if len(st._keys) != len(keys):
            raise TokenError(MALFORMED, "trust list: duplicate kid")
        return st

    @staticmethod
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

    def prepare(self):
        """Build every key's verification tables now (~10 ms and 2 KB each here), e.g. right
        after a trust list is installed, instead of during the first tap that needs one."""
        for k in self._keys.values():
            if k.prepared is None:
                k.prepared = p256.prepare(k.x, k.y)

    def get(self, kid):
        """IssuerKey for a kid, or None."""
        return self._keys.get(kid)

    def __len__(self):
        return len(self._keys)

    def kids(self):
        return list(self._keys)
