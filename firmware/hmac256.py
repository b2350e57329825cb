# HMAC-SHA256 (RFC 2104) over MicroPython's hashlib.sha256.
#
# The stock ESP32 build has no `hmac` module, but its sha256 runs on the SHA hardware,
# so HMAC costs two hardware hashes. Used by the sync client (upload batches) and by the
# maintenance protocol (authenticated requests from the depot tool).
#
# The padded inner/outer keys are computed once per key (HMAC object or `Key`), so a
# MAC per batch allocates only the two hash objects and the digests.
import hashlib

from micropython import const

BLOCK = const(64)
DIGEST = const(32)


class Key:
    """A prepared HMAC-SHA256 key: the ipad/opad blocks computed once."""

    def __init__(self, key):
        if len(key) > BLOCK:
            key = hashlib.sha256(key).digest()
        ipad = bytearray(BLOCK)
        opad = bytearray(BLOCK)
        for i in range(BLOCK):
            b = key[i] if i < len(key) else 0
            ipad[i] = b ^ 0x36
            opad[i] = b ^ 0x5C
        self._ipad = bytes(ipad)
        self._opad = bytes(opad)

    def new(self, data=None):
        """A streaming HMAC object (update/digest) under this key."""
        return _HMAC(self, data)

    def mac(self, data):
        """The 32-byte HMAC-SHA256 of `data` (bytes, bytearray or memoryview)."""
        h = hashlib.sha256(self._ipad)
        h.update(data)
        o = hashlib.sha256(self._opad)
        o.update(h.digest())
        return o.digest()


class _HMAC:
    def __init__(self, key, data):
        self._key = key
        self._inner = hashlib.sha256(key._ipad)
        if data is not None:
            self._inner.update(data)

    def update(self, data):
        self._inner.update(data)

    def digest(self):
        # MicroPython's sha256 cannot digest twice, so this HMAC object is single-use too
        o = hashlib.sha256(self._key._opad)
        o.update(self._inner.digest())
        return o.digest()


def hmac_sha256(key, data):
    """One-shot HMAC-SHA256(key, data) -> 32 bytes."""
    return Key(key).mac(data)


def equal(a, b):
    """Constant-time comparison of two MACs (no early exit on the first difference)."""
    if len(a) != len(b):
        return False
    d = 0
    for i in range(len(a)):
        d |= a[i] ^ b[i]
    return d == 0
