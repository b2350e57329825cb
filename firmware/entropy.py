# Random bytes for the NFC challenge and the maintenance nonce.
#
# Why not os.urandom alone: on the ESP32 it is esp_random(), whose hardware RNG is only
# pseudo-random while neither Wi-Fi nor Bluetooth is on (ESP-IDF, "Random Number
# Generation": the RF subsystem is the noise source). The maintenance challenge is made
# at boot, before any Wi-Fi, and the NFC challenge on the road, where the validator keeps
# its radio off. A challenge that repeats after a reboot would let a recorded phone
# answer be replayed (docs/tokens.md, NFC freshness).
#
# So every draw is SHA-256 over a pool and a counter, with os.urandom and the microsecond
# tick mixed in. The pool is made at boot from a seed file on flash (rewritten with a new
# value at every boot, so two boots never share a pool even if os.urandom repeats), the
# board's unique id, the DS3231 time and os.urandom; a board whose flash was cloned from
# another still differs by its unique id. Once Wi-Fi is up os.urandom is truly random,
# and it is mixed into every draw. Cost per draw: one SHA-256 block (hardware SHA on the
# ESP32) and ~100 bytes of short-lived heap.
import hashlib
import os
import struct
import time

SEED_FILE = "/data/seed.bin"

_pool = bytearray(32)
_state = [0, False]  # draws, seeded


def seed(path=SEED_FILE, extra=b""):
    """Build the pool (at boot); returns True if the seed file could be rewritten."""
    h = hashlib.sha256(b"brt-entropy-1")
    try:
        with open(path, "rb") as f:
            h.update(f.read(32))
    except OSError:
        pass
    try:
        import machine
        h.update(machine.unique_id())
    except (ImportError, AttributeError, OSError):
        pass
    h.update(os.urandom(32))
    h.update(struct.pack("<II", time.ticks_us(), time.ticks_ms()))
    h.update(extra)
    _pool[:] = h.digest()
    _state[1] = True
    nxt = hashlib.sha256(bytes(_pool) + b"next-boot").digest()
    try:
        with open(path, "wb") as f:
            f.write(nxt)
        return True
    except OSError:
        return False


def random(n=16):
    """n (<= 32) unpredictable bytes."""
    if not _state[1]:
        seed()
    _state[0] += 1
    h = hashlib.sha256(_pool)
    h.update(struct.pack("<II", _state[0], time.ticks_us()))
    h.update(os.urandom(16))
    return h.digest()[:n]
