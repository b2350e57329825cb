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


def __getattr__(attr):
    # name() and lookup(): the short English names, for logs and the simulator, live in
    # tokens/reason_names.py, loaded on first use (a tap answers with codes only)
    from tokens import reason_names
    return getattr(reason_names, attr)
