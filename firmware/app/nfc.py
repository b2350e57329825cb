# The validator's side of the wallet's NFC exchange (docs/tokens.md 'NFC'): ISO 7816-4
# APDUs over ISO-DEP through the PN532.
#
#   SELECT       00 A4 04 00 05 F0 42 52 54 31 00      -> 01 90 00 (format version 1)
#   TAP          80 54 00 00 10 <challenge 16> 00       -> data 90 00, or a chunk 61 xx
#   GET RESPONSE 00 C0 00 00 xx                          -> next chunk 61 xx / last 90 00
#
# The answer is collected into one buffer allocated at boot, bounded by the token size
# limit: a phone that keeps chaining is cut off, not believed.
from micropython import const

MAX_TOKEN = const(512)        # tokens/fmt: CBOR [pass, proof] at most 512 bytes
MAX_CHAIN = const(8)          # GET RESPONSEs per tap (512 bytes take 3 at 250 bytes each)

SELECT = b"\x00\xa4\x04\x00\x05\xf0\x42\x52\x54\x31\x00"
_TAP_HEAD = b"\x80\x54\x00\x00\x10"


class WalletError(Exception):
    """The phone is not a wallet, or its answers broke the protocol (reason in .why)."""

    def __init__(self, why):
        super().__init__(why)
        self.why = why


class NfcReader:
    def __init__(self, pn532):
        self.pn532 = pn532
        self.buf = bytearray(MAX_TOKEN)
        self._tap = bytearray(22)
        self._tap[0:5] = _TAP_HEAD
        self._getresp = bytearray(b"\x00\xc0\x00\x00\x00")

    def read_token(self, challenge):
        """SELECT + TAP(challenge) + chaining; a memoryview of the token (valid until the
        next call). WalletError for protocol faults; the driver's PN532Error passes up."""
        p = self.pn532
        r = p.exchange(SELECT)
        if len(r) < 2 or r[-2] != 0x90 or r[-1] != 0x00:
            raise WalletError("not a wallet (SELECT %02x%02x)" % (r[-2], r[-1])
                              if len(r) >= 2 else "not a wallet")
        if len(r) != 3 or r[0] != 1:
            raise WalletError("wallet format version not supported")
        tap = self._tap
        tap[5:21] = challenge
        tap[21] = 0
        r = p.exchange(tap)
        n = 0
        for _ in range(MAX_CHAIN + 1):
            if len(r) < 2:
                raise WalletError("answer shorter than its status word")
            sw1, sw2 = r[-2], r[-1]
            k = len(r) - 2
            if n + k > MAX_TOKEN:
                raise WalletError("token over %d bytes" % MAX_TOKEN)
            self.buf[n:n + k] = r[:k]
            n += k
            if sw1 == 0x90 and sw2 == 0x00:
                return memoryview(self.buf)[:n]
            if sw1 != 0x61:
                raise WalletError("wallet refused: %02x%02x" % (sw1, sw2))
            self._getresp[4] = sw2
            r = p.exchange(self._getresp)
        raise WalletError("too many response chunks")
