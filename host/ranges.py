"""The numeric ranges of docs/ranges.md, as the host tools, the depot and the back office
check them (the firmware has its own constants for the same table: app/fares.py MAX_FARE,
tokens' uint32 claims, app/config.py). One place on the host, so the three cannot drift.

`check(value, name)` returns the value or raises ValueError naming the field and range.
"""

U32_MAX = 0xFFFFFFFF
MAX_FARE = 1_000_000          # rupiah; firmware/app/fares.py MAX_FARE
MAX_FARE_CATEGORY = 5         # the fare table's key (firmware/app/fares.py MAX_CATEGORY)
PASS_CATEGORIES = 5           # a pass's category 0..5 (docs/tokens.md)
MAX_REASON = 79               # reason codes 0..79 (docs/tokens.md 1-39, docs/records.md 40-79)

# tap record keys (docs/records.md) -> (low, high) of the unsigned ones
RECORD_UINTS = {
    1: (0, U32_MAX),          # time, Unix seconds
    2: (0, 1),                # clock flags
    3: (0, 2),                # channel: 0 none (event), 1 NFC, 2 QR
    4: (0, 3),                # answer: 0 accepted, 1 rejected, 2 already paid, 3 event
    5: (0, MAX_REASON),       # reason code
    8: (0, PASS_CATEGORIES),  # fare category (from the pass)
    9: (0, MAX_FARE),         # fare charged, rupiah
    11: (0, U32_MAX),         # fare table version
    12: (0, U32_MAX),         # offline allowance, rupiah (read if present; not written today)
    13: (0, U32_MAX),         # an event's value
}
# byte-string keys -> (shortest, longest)
RECORD_BYTES = {6: (4, 16), 7: (4, 16), 10: (16, 16)}


def is_uint(v, lo=0, hi=U32_MAX):
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def check(v, name, lo=0, hi=U32_MAX):
    if not is_uint(v, lo, hi):
        raise ValueError("%s out of range %d..%d (docs/ranges.md)" % (name, lo, hi))
    return v


def check_record_field(key, v):
    """A tap record's value for `key`: within the table, else ValueError. (The back office
    calls this for every field of every tap: the message is built only on failure.)"""
    r = RECORD_UINTS.get(key)
    if r is not None:
        # type() is int: a bool (True == 1) is not a number here
        if type(v) is int and r[0] <= v <= r[1]:
            return v
        raise ValueError("record key %d out of range %d..%d (docs/ranges.md)" % (key, r[0], r[1]))
    r = RECORD_BYTES.get(key)
    if r is not None:
        if not isinstance(v, bytes) or not r[0] <= len(v) <= r[1]:
            raise ValueError("record key %d: %d..%d bytes (docs/ranges.md)" % (key, r[0], r[1]))
        return v
    raise ValueError("record key %r unknown (docs/records.md)" % (key,))


def record_problem(payload):
    """None for a tap record within docs/records.md and this table, else why not (the depot
    alarms on it and forwards it as it is; the back office keeps it aside)."""
    import cbor2
    try:
        rec = cbor2.loads(bytes(payload))
    except Exception as e:  # noqa: BLE001 - cbor2 raises several kinds on bad bytes
        return "not CBOR: %s" % (str(e)[:60] or type(e).__name__)
    if not isinstance(rec, dict):
        return "not a map"
    try:
        for k, v in rec.items():
            if k in RECORD_UINTS or k in RECORD_BYTES:
                check_record_field(k, v)
    except ValueError as e:
        return str(e)
    if 4 not in rec:
        return "no answer (key 4)"
    return None
