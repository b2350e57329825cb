"""The NFC exchange (ISO 7816-4 APDUs over ISO-DEP), both sides, as exact bytes.

Validator -> phone:
    SELECT      00 A4 04 00 05 F0 42 52 54 31 00     -> 01 90 00 (format version 1)
    TAP         80 54 00 00 10 <challenge 16> 00      -> data + 90 00, or a chunk + 61 xx
    GET RESPONSE 00 C0 00 00 xx                        -> next chunk + 61 xx / last + 90 00
`PhoneCard` is the phone's side (host card emulation) for the simulator and tests.
"""

from . import fmt
from .errors import TokenToolError

SW_OK = b"\x90\x00"
SW_WRONG_LENGTH = b"\x67\x00"
SW_CONDITIONS = b"\x69\x85"        # tap before SELECT, GET RESPONSE with nothing pending
SW_NOT_FOUND = b"\x6A\x82"         # SELECT of another AID
SW_INS = b"\x6D\x00"
SW_CLA = b"\x6E\x00"


def select_apdu():
    """SELECT by AID (first or only occurrence), Le=00."""
    return bytes([0x00, 0xA4, 0x04, 0x00, len(fmt.AID)]) + fmt.AID + b"\x00"


def tap_apdu(challenge):
    """The tap command carrying the validator's 16-byte random challenge, Le=00."""
    if len(challenge) != fmt.CHALLENGE_LEN:
        raise TokenToolError("challenge must be %d bytes" % fmt.CHALLENGE_LEN)
    return bytes([fmt.CLA_PROPRIETARY, fmt.INS_TAP, 0, 0, fmt.CHALLENGE_LEN]) + \
        bytes(challenge) + b"\x00"


def get_response_apdu(le):
    """GET RESPONSE for `le` bytes (1..256; 256 is sent as 00)."""
    if not 1 <= le <= 256:
        raise TokenToolError("GET RESPONSE length must be 1..256")
    return bytes([0x00, 0xC0, 0x00, 0x00, le & 0xFF])


def split_response(data, chunk=fmt.CHUNK):
    """The response APDUs that deliver `data`: chunks with 61 xx (xx = bytes still to come,
    00 for 256 or more), the last with 90 00."""
    out = []
    i = 0
    while True:
        part = data[i:i + chunk]
        i += len(part)
        left = len(data) - i
        if left == 0:
            out.append(bytes(part) + SW_OK)
            return out
        out.append(bytes(part) + bytes([0x61, left if left < 256 else 0]))


def parse_response(resp):
    """(data, sw as int) of one response APDU."""
    if len(resp) < 2:
        raise TokenToolError("response APDU shorter than its status word")
    return bytes(resp[:-2]), (resp[-2] << 8) | resp[-1]


def join_responses(first, exchange):
    """Reassemble a chained answer: `first` response, then GET RESPONSE via
    exchange(apdu) -> response until 90 00. Returns the data."""
    data, sw = parse_response(first)
    buf = bytearray(data)
    while (sw >> 8) == 0x61:
        if len(buf) > fmt.MAX_TOKEN:
            raise TokenToolError("chained answer longer than %d bytes" % fmt.MAX_TOKEN)
        data, sw = parse_response(exchange(get_response_apdu((sw & 0xFF) or 256)))
        buf += data
    if sw != 0x9000:
        raise TokenToolError("phone answered SW %04X" % sw)
    return bytes(buf)


class PhoneCard:
    """The phone's side of the exchange: answers APDUs like a wallet app's HCE service.

    `answer(challenge) -> bytes` is called on the tap command and returns the payload
    (e.g. nfc_payload(pass, make_proof(..., challenge=challenge))).
    """

    def __init__(self, answer, chunk=fmt.CHUNK):
        self.answer = answer
        self.chunk = chunk
        self.selected = False
        self.pending = b""

    def process(self, apdu):
        apdu = bytes(apdu)
        if len(apdu) < 4:
            return SW_WRONG_LENGTH
        cla, ins = apdu[0], apdu[1]
        if cla == 0x00 and ins == 0xA4:
            self.pending = b""
            if apdu[2:4] == b"\x04\x00" and len(apdu) >= 5 and \
                    apdu[5:5 + apdu[4]] == fmt.AID and apdu[4] == len(fmt.AID):
                self.selected = True
                return bytes([fmt.FORMAT_VERSION]) + SW_OK
            self.selected = False
            return SW_NOT_FOUND
        if cla == 0x00 and ins == 0xC0:
            if not self.pending:
                return SW_CONDITIONS
            le = (apdu[4] or 256) if len(apdu) >= 5 else 256
            return self._next(min(le, self.chunk))
        if cla != fmt.CLA_PROPRIETARY:
            return SW_CLA
        if ins != fmt.INS_TAP:
            return SW_INS
        if not self.selected:
            return SW_CONDITIONS
        if len(apdu) not in (5 + fmt.CHALLENGE_LEN, 6 + fmt.CHALLENGE_LEN) or \
                apdu[4] != fmt.CHALLENGE_LEN:
            return SW_WRONG_LENGTH
        self.pending = bytes(self.answer(apdu[5:5 + fmt.CHALLENGE_LEN]))
        return self._next(self.chunk)

    def _next(self, n):
        part, self.pending = self.pending[:n], self.pending[n:]
        if not self.pending:
            return part + SW_OK
        left = len(self.pending)
        return part + bytes([0x61, left if left < 256 else 0])
