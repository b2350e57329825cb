# The fare table: signed, versioned data (a fare-table bundle), never code.
#
# Body (docs/ARCHITECTURE.md 'Bundles'): CBOR map {"cur": "IDR", "fares": {category: rupiah}}.
# The bundle's signature is checked when it is installed (bundles.py); this module only
# checks the decoded body's shape, because a fare table that decodes to nonsense must be
# refused at boot rather than charge a rider a wrong amount.
from micropython import const

# the categories passes carry (docs/ARCHITECTURE.md 'Shared vocabulary': 0 regular ..
# 5 child): a table keyed otherwise is refused, as host/bundles.py refuses to build one
MAX_CATEGORY = const(5)
MAX_FARE = const(1000000)     # rupiah; a sanity bound, not a policy


class FareError(Exception):
    pass


class FareTable:
    def __init__(self, fares, version, currency="IDR"):
        self.fares = fares        # {category: rupiah}
        self.version = version    # the bundle version, journaled with each tap
        self.currency = currency

    @classmethod
    def from_body(cls, body, version):
        """Validate a decoded fare-table body; FareError with the reason if it is wrong.
        Boot and depot code (app/fares_load.py), forgotten by boot after (app/state.py)."""
        from app import fares_load
        return fares_load.from_body(cls, body, version)

    def fare(self, category):
        """Rupiah for a category, or None if the table has no amount for it."""
        return self.fares.get(category)


def rupiah(amount):
    """'Rp 3.500' - Indonesian thousands separator is a dot."""
    s = str(amount)
    out = ""
    while len(s) > 3:
        out = "." + s[-3:] + out
        s = s[:-3]
    return "Rp " + s + out
