# Fare-table bodies checked (app/fares.py holds the table a tap reads): a fare table that
# decodes to nonsense is refused at boot rather than charge a rider a wrong amount. Boot
# and depot code: FareTable.from_body imports it, boot forgets it (app/state.py).
from app.fares import MAX_CATEGORY, MAX_FARE, FareError


def from_body(cls, body, version):
    """Validate a decoded fare-table body; FareError with the reason if it is wrong."""
    if not isinstance(body, dict):
        raise FareError("fare table body is not a map")
    for k in body:
        if k not in ("cur", "fares"):
            raise FareError("fare table: unknown key %r" % (k,))
    cur = body.get("cur")
    if cur != "IDR":
        raise FareError("fare table: currency must be IDR")
    fares = body.get("fares")
    if not isinstance(fares, dict) or not fares:
        raise FareError("fare table: 'fares' must be a non-empty map")
    for cat, amount in fares.items():
        if not isinstance(cat, int) or cat is True or cat is False \
                or not 0 <= cat <= MAX_CATEGORY:
            raise FareError("fare table: bad category %r" % (cat,))
        if not isinstance(amount, int) or amount is True or amount is False \
                or not 0 <= amount <= MAX_FARE:
            raise FareError("fare table: bad amount for category %d" % cat)
    if not isinstance(version, int) or version < 0:
        raise FareError("fare table: bad version")
    return cls(fares, version, cur)
