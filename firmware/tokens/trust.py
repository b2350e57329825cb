# The trust store: issuer keys by kid, with validity periods and key usage, built from the
# body of the operator-signed trust-list bundle (docs/bundles.md), whose parsing and
# checks (each key once, so a tap never pays for it) are tokens/trust_load.py's. A
# prepared form for fast verification is built by prepare() or on first use.
from tokens import fmt, p256

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
        """TrustStore from a trust-list bundle body; TokenError(MALFORMED) if invalid.
        The parsing and checks are boot and depot code (tokens/trust_load.py), loaded
        here and forgotten by boot once the bundles are checked (app/state.py)."""
        from tokens import trust_load
        return trust_load.from_body(cls, body)

    @staticmethod
    def key_from_row(row):
        from tokens import trust_load
        return trust_load.key_from_row(row)

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
