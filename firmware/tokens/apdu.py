# The validator's side of the NFC exchange (docs/tokens.md 'NFC'): the APDUs it sends and
# the reassembly of a chained answer (SW 61xx -> GET RESPONSE). Transport-agnostic: the
# caller passes exchange(apdu) -> response bytes (e.g. the PN532 driver's InDataExchange),
# so this stays pure and testable; errors raise TokenError(MALFORMED / TOO_LARGE).
from tokens import fmt
from tokens.errors import TokenError
from tokens.reasons import MALFORMED, TOO_LARGE

SELECT = b"\x00\xa4\x04\x00\x05" + fmt.AID + b"\x00"
GET_RESPONSE_HEAD = b"\x00\xc0\x00\x00"
SW_OK = 0x9000


def tap_command(challenge, buf=None):
    """80 54 00 00 10 <challenge> 00, written into `buf` (22 bytes) if given."""
    if len(challenge) != fmt.CHALLENGE_LEN:
        raise ValueError("challenge must be 16 bytes")
    if buf is None:
        buf = bytearray(6 + fmt.CHALLENGE_LEN)
    buf[0] = fmt.CLA_PROPRIETARY
    buf[1] = fmt.INS_TAP
    buf[2] = 0
    buf[3] = 0
    buf[4] = fmt.CHALLENGE_LEN
    buf[5:5 + fmt.CHALLENGE_LEN] = challenge
    buf[5 + fmt.CHALLENGE_LEN] = 0
    return buf


def status(resp):
    """Status word of a response APDU (int); MALFORMED if shorter than 2 bytes."""
    if resp is None or len(resp) < 2:
        raise TokenError(MALFORMED, "response shorter than its status word")
    return (resp[-2] << 8) | resp[-1]


def select(exchange):
    """SELECT the wallet AID; returns the phone's format version byte."""
    resp = exchange(SELECT)
    sw = status(resp)
    if sw != SW_OK or len(resp) != 3:
        raise TokenError(MALFORMED, "SELECT answered %04x" % sw)
    return resp[0]


def read_token(exchange, challenge, out=None):
    """Send the tap command, follow 61xx chaining; the payload (a memoryview of `out`,
    a bytearray of fmt.MAX_TOKEN bytes allocated once by the caller)."""
    if out is None:
        out = bytearray(fmt.MAX_TOKEN)
    resp = exchange(tap_command(challenge))
    n = 0
    rounds = 0
    while True:
        sw = status(resp)
        k = len(resp) - 2
        if n + k > len(out):
            raise TokenError(TOO_LARGE, "NFC answer")
        out[n:n + k] = resp[:k]
        n += k
        if sw == SW_OK:
            return memoryview(out)[:n]
        if (sw >> 8) != 0x61:
            raise TokenError(MALFORMED, "phone answered %04x" % sw)
        rounds += 1
        if rounds > len(out) // 16:  # a phone sending 1-byte chunks forever
            raise TokenError(MALFORMED, "too many GET RESPONSE rounds")
        le = sw & 0xFF
        resp = exchange(GET_RESPONSE_HEAD + bytes((le,)))
