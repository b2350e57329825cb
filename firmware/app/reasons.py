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


def __getattr__(attr):
    # name() and describe(): the short English names, for logs and the simulator, live in
    # app/reason_names.py, loaded on first use (a tap answers with codes only)
    from app import reason_names
    return getattr(reason_names, attr)
