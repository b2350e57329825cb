# Tap records: the journal payload of every tap, accepted or not (docs/records.md).
#
# A CBOR map with small integer keys, in ascending key order and shortest-form integers
# (deterministic, so the depot and back office can hash or compare records byte for byte).
# Only two CBOR types occur - unsigned integers and byte strings - so the record is
# written directly into one buffer allocated at boot: no encoder objects, no per-tap
# garbage beyond the final bytes handed to the journal.
from micropython import const

T_TIME = const(1)
T_CLOCK = const(2)
T_CHANNEL = const(3)
T_ANSWER = const(4)
T_REASON = const(5)
T_WALLET = const(6)
T_PASS = const(7)
T_CATEGORY = const(8)
T_FARE = const(9)
T_PROOF = const(10)
T_FARE_VERSION = const(11)
T_VALUE = const(13)           # an event's value (docs/records.md 'Event records')

CLOCK_TRUSTED = const(0)
CLOCK_UNTRUSTED = const(1)
NFC = const(1)
QR = const(2)
ACCEPTED = const(0)
REJECTED = const(1)
ALREADY_PAID = const(2)
EVENT = const(3)              # not a tap: something the back office must see (key 5 says what)
NO_CHANNEL = const(0)
TIME_REFUSED = const(56)      # event: the depot's time was refused (key 13: the time offered)

MAX_ID = const(32)            # wallet/pass/proof ids are 4..16 bytes; bound the buffer
MAX_RECORD = const(160)       # 11 keys, 3 ids of <= 32 bytes, 6 uints of <= 9 bytes


class RecordError(Exception):
    pass


class RecordWriter:
    def __init__(self):
        self.buf = bytearray(MAX_RECORD)
        self.n = 0

    def _head(self, major, v):
        b = self.buf
        n = self.n
        m = major << 5
        if v < 24:
            b[n] = m | v
            self.n = n + 1
        elif v < 0x100:
            b[n] = m | 24
            b[n + 1] = v
            self.n = n + 2
        elif v < 0x10000:
            b[n] = m | 25
            b[n + 1] = v >> 8
            b[n + 2] = v & 0xFF
            self.n = n + 3
        elif v < 0x100000000:
            b[n] = m | 26
            b[n + 1] = (v >> 24) & 0xFF
            b[n + 2] = (v >> 16) & 0xFF
            b[n + 3] = (v >> 8) & 0xFF
            b[n + 4] = v & 0xFF
            self.n = n + 5
        else:
            raise RecordError("integer out of range")

    def _uint(self, key, v):
        if v < 0:
            raise RecordError("negative field %d" % key)
        self._head(0, key)
        self._head(0, v)

    def _bstr(self, key, v):
        if len(v) > MAX_ID:
            raise RecordError("id field %d too long" % key)
        self._head(0, key)
        self._head(2, len(v))
        n = self.n
        self.buf[n:n + len(v)] = v
        self.n = n + len(v)

    def encode(self, t, clock_flags, channel, answer, reason, wallet_id=None, pass_id=None,
               category=None, fare=0, proof_id=None, fare_version=None):
        """Encode one tap record; returns a memoryview of the internal buffer (valid until
        the next encode) - the journal copies it into flash."""
        count = 6 + (wallet_id is not None) + (pass_id is not None) + \
            (category is not None) + (proof_id is not None) + (fare_version is not None)
        self.n = 0
        self._head(5, count)
        self._uint(T_TIME, t)
        self._uint(T_CLOCK, clock_flags)
        self._uint(T_CHANNEL, channel)
        self._uint(T_ANSWER, answer)
        self._uint(T_REASON, reason)
        if wallet_id is not None:
            self._bstr(T_WALLET, wallet_id)
        if pass_id is not None:
            self._bstr(T_PASS, pass_id)
        if category is not None:
            self._uint(T_CATEGORY, category)
        self._uint(T_FARE, fare)
        if proof_id is not None:
            self._bstr(T_PROOF, proof_id)
        if fare_version is not None:
            self._uint(T_FARE_VERSION, fare_version)
        return memoryview(self.buf)[:self.n]

    def encode_event(self, t, clock_flags, reason, value):
        """An event record (answer 3, channel 0, fare 0, key 13 = value): journaled like a
        tap so it reaches the back office, never counted as one."""
        self.n = 0
        self._head(5, 7)
        self._uint(T_TIME, t)
        self._uint(T_CLOCK, clock_flags)
        self._uint(T_CHANNEL, NO_CHANNEL)
        self._uint(T_ANSWER, EVENT)
        self._uint(T_REASON, reason)
        self._uint(T_FARE, 0)
        self._uint(T_VALUE, value)
        return memoryview(self.buf)[:self.n]


def __getattr__(name):
    # decode() - for recovery at boot, the simulator and tests; the depot decodes with
    # cbor2 - lives in app/record_decode.py, loaded on first use: a tap only encodes
    from app import record_decode
    return getattr(record_decode, name)
