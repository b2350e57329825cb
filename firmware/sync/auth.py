# What the validator believes from the depot, and how its records are tagged for the back
# office (docs/sync-api.md 'Keys' and 'Time'); the host side is host/synckeys.py.
#
# Keys: the device secret S never goes on the wire. The depot holds the "sync" key derived
# from it (uploads, hellos, and the depot's time and acknowledgements are MAC'd with it),
# the back office the "record" key (a 16-byte tag on every journal record, which a depot
# cannot make). Time: the depot's time counts only if it is MAC'd with the sync key over
# the nonce this validator sent in the same hello, and only if it moves the clock by at
# most MAX_STEP_S and not before the newest journaled record (judge()).
import struct

import hmac256
from micropython import const

KDF_LABEL = b"BRT-KDF-v1|"
TAG_LEN = const(16)
MAX_STEP_S = const(600)   # one sync moves a trusted clock by at most 10 minutes

# why a time was refused (reported to the depot, journaled as an event record)
BAD_MAC = "bad_mac"            # not MAC'd with this validator's sync key over its nonce
BEFORE_LAST = "before_last"    # earlier than the newest journaled record
STEP = "step"                  # a trusted clock would move by more than MAX_STEP_S
IMPLAUSIBLE = "implausible"    # outside 2025..2050


def derive(secret, label):
    """HMAC-SHA256(S, "BRT-KDF-v1|" + label): the "sync" / "record" / "maint" keys."""
    return hmac256.Key(secret).mac(KDF_LABEL + label)


class Keys:
    """The prepared sync and record keys of one validator (derived once, at the depot)."""

    def __init__(self, secret, device_id):
        self.sync = hmac256.Key(derive(secret, b"sync"))
        self.record = hmac256.Key(derive(secret, b"record"))
        self._rec_prefix = b"BRT-REC-v1|" + device_id.encode() + b"|"
        self._num = bytearray(12)

    def tag_into(self, buf, off, incarnation, seq, t, payload):
        """Write the record's 16-byte tag at buf[off:off+16]."""
        struct.pack_into(">III", self._num, 0, incarnation, seq, t)
        h = self.record.new(self._rec_prefix)
        h.update(self._num)
        h.update(payload)
        buf[off:off + TAG_LEN] = h.digest()[:TAG_LEN]

    def time_ok(self, nonce, t, mac_hex):
        """True if mac_hex is the depot's MAC of time t over our nonce."""
        return _hex_equal(mac_hex, self.sync.mac(b"BRT-TIME-v1|" + nonce + struct.pack(">I", t)))

    def ack_ok(self, request_mac, acked, mac_hex):
        """True if mac_hex is the depot's MAC acknowledging `acked` for the batch whose own
        MAC was request_mac (a fake access point cannot make the validator drop taps)."""
        return _hex_equal(mac_hex, self.sync.mac(b"BRT-ACK-v1|" + request_mac +
                                                 struct.pack(">I", acked)))


def _hex_equal(mac_hex, digest):
    if not isinstance(mac_hex, str) or len(mac_hex) != 64:
        return False
    import binascii
    try:
        got = binascii.unhexlify(mac_hex)
    except ValueError:
        return False
    return hmac256.equal(got, digest)


def judge(offered, now, trusted, floor, plausible):
    """None if the (authenticated) depot time `offered` may be set, else why not.

    now/trusted: the validator's clock; floor: t of the newest journaled record (0: none);
    plausible: clock.plausible. An untrusted clock (DS3231 unset) takes any plausible time
    not before the floor; a trusted one moves by at most MAX_STEP_S per sync."""
    if not plausible(offered):
        return IMPLAUSIBLE
    if offered < floor:
        return BEFORE_LAST
    if trusted and (offered - now > MAX_STEP_S or now - offered > MAX_STEP_S):
        return STEP
    return None
