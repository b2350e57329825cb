# Application reason codes, 40-79 of the one reason-code space (0 OK, 1-39 token layer in
# tokens/reasons.py). They are journaled in tap records and parsed by the depot and the
# back office, so a number, once given, never changes meaning.
from micropython import const

OK = const(0)

REPLAY = const(40)             # this proof was already used (a screenshot shown again)
DENIED = const(41)             # wallet or pass on the deny list
ALREADY_PAID = const(42)       # anti-passback: same wallet here within passback_s
ALLOWANCE_EXHAUSTED = const(43)  # offline taps of this pass used up
NO_FARE = const(44)            # the fare table has no amount for the pass's category
# 45 is not used: a QR token refused for an untrusted clock carries the token layer's
# CLOCK_UNTRUSTED (25), given after its signatures were checked.
JOURNAL_FULL = const(46)       # journal full of unsent taps: go to the depot
READER_FAULT = const(47)       # NFC/QR reader failed during the tap
NO_FARE_TABLE = const(48)      # no valid fare table installed
NO_TRUST_LIST = const(49)      # no valid trust list installed
BUSY = const(50)               # replay window full of live proofs: cannot check, try again
STORE_ERROR = const(51)        # replay/passback/allowance store could not be written
JOURNAL_ERROR = const(52)      # journal append failed (not full): tap not recorded
DENY_LIST_BAD = const(53)      # installed deny list unreadable: revocation cannot be checked
NOT_CONFIGURED = const(54)     # no valid config.json: the validator is not provisioned
INTERNAL = const(55)           # unexpected error in the decision: rejected, never crashed

NAMES = {
    OK: "ok",
    REPLAY: "replay",
    DENIED: "denied",
    ALREADY_PAID: "already paid",
    ALLOWANCE_EXHAUSTED: "allowance exhausted",
    NO_FARE: "no fare for category",
    JOURNAL_FULL: "journal full",
    READER_FAULT: "reader fault",
    NO_FARE_TABLE: "no fare table",
    NO_TRUST_LIST: "no trust list",
    BUSY: "replay store busy",
    STORE_ERROR: "store error",
    JOURNAL_ERROR: "journal error",
    DENY_LIST_BAD: "deny list bad",
    NOT_CONFIGURED: "not configured",
    INTERNAL: "internal error",
}


def name(code):
    """Short English name of an app reason code (None if not an app code)."""
    return NAMES.get(code)


def describe(code):
    """Short English name of any reason code, app or token layer."""
    n = NAMES.get(code)
    if n is None:
        from tokens import reasons as token_reasons
        n = token_reasons.NAMES.get(code, "code %d" % code)
    return n
