# Token-layer reason codes, 1-39 of the one reason-code space (0 OK, 40-79 the app's in
# app/reasons.py). Journaled in tap records and parsed by the depot and the back office:
# a number, once given, never changes meaning. docs/tokens.md lists when each is given.
from micropython import const

OK = const(0)

MALFORMED = const(1)          # token is not CBOR [pass, proof] of COSE_Sign1 arrays
TOO_LARGE = const(2)          # QR text / payload / pass / proof over its size limit
BAD_PREFIX = const(3)         # QR text does not start with "BRT1:"
BAD_ENCODING = const(4)       # base45 text invalid
BAD_CBOR = const(5)           # not strict CBOR (indefinite, non-shortest, trailing, deep...)
BAD_ALG = const(6)            # protected header: alg is not ES256, or header malformed
UNKNOWN_KEY = const(7)        # pass kid not in the trust list
KEY_NOT_YET_VALID = const(8)  # issuer key's validity has not begun
KEY_EXPIRED = const(9)        # issuer key's validity has ended
KEY_USAGE = const(10)         # issuer key may not sign wallet passes
BAD_SIGNATURE = const(11)     # pass signature does not verify
PASS_MALFORMED = const(12)    # pass claims missing, extra or of the wrong type
PASS_EXPIRED = const(13)      # pass exp is past
PASS_NOT_YET_VALID = const(14)  # pass iat is in the future (beyond the skew allowance)
WRONG_OPERATOR = const(15)    # pass is for another operator
BAD_CNF_KEY = const(16)       # the pass's phone key is not a P-256 point
BAD_CATEGORY = const(17)      # fare category outside 0..5
PROOF_MALFORMED = const(18)   # proof payload missing fields or of the wrong type
PROOF_BAD_SIGNATURE = const(19)  # proof signature does not verify with the phone key
PROOF_WRONG_PASS = const(20)  # proof binds another pass
PROOF_STALE = const(21)       # QR proof time older than the freshness window
PROOF_FUTURE = const(22)      # QR proof time ahead of the validator's clock
CHALLENGE_MISMATCH = const(23)  # NFC proof signed another challenge
PROOF_CHANNEL = const(24)     # NFC proof without a challenge, or QR proof with one
CLOCK_UNTRUSTED = const(25)   # QR token while the validator's clock is unset/implausible
INTERNAL = const(39)          # unexpected error inside the verifier: rejected, not crashed

# Short English names, for logs and the simulator: one "|"-separated string indexed by
# code (a dict of 27 str objects took ~2.5 KB more of the heap the tap path must fit).
_NAMES = (
    "ok|malformed|too large|bad prefix|bad base45|bad cbor|bad algorithm|unknown key|"
    "key not yet valid|key expired|key usage|bad signature|pass malformed|"
    "pass expired|pass not yet valid|wrong operator|bad phone key|bad category|"
    "proof malformed|proof bad signature|proof for another pass|proof stale|"
    "proof from the future|challenge mismatch|proof for another channel|"
    "clock untrusted||||||||||||||internal error"
)


def lookup(names, code, base=0):
    """Entry code - base of a "|"-separated names string; None if empty or out of range."""
    k = code - base if isinstance(code, int) else -1
    if k < 0:
        return None
    i = 0
    while k:
        i = names.find("|", i) + 1
        if i == 0:
            return None
        k -= 1
    j = names.find("|", i)
    return names[i:j if j >= 0 else len(names)] or None


def name(code):
    """Short English name of a token reason code (None if not a token code)."""
    return lookup(_NAMES, code)
