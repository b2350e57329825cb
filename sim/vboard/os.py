# The virtual board's `os` (MicroPython, simulator only): the unix port's own, except
# os.urandom. On MICROPYPATH=firmware:sim/vboard this replaces the built-in `os` (an
# extensible built-in).
#
# On the ESP32 os.urandom is esp_random(), and ESP-IDF ("Random Number Generation")
# says its output is only pseudo-random while neither Wi-Fi nor Bluetooth is on: the RF
# subsystem is the noise source. The simulator models the worst case of that: with a
# device host and the board's Wi-Fi not active, os.urandom returns a fixed xorshift
# stream seeded by the board's unique id - the same bytes after every power-up - so
# firmware that draws a challenge from os.urandom alone at boot or on the road repeats
# it, as a board might. With Wi-Fi active (or no device host) it is the host's urandom.
import sys

_p = sys.path
sys.path = []
try:
    import os as _real  # the unix port's built-in os
finally:
    sys.path = _p
del _p



def __getattr__(name):
    # everything but urandom is the built-in's (looked up, not copied: heap)
    return getattr(_real, name)


_state = [0]  # xorshift32 word; 0 = not seeded since this power-up


def _radio_on():
    import machine
    try:
        return bool(machine._call(machine.OP_WLAN, b"\x00\xff")[0])
    except OSError:
        return False  # a board without Wi-Fi (sim/bareboard.py)


def urandom(n):
    if not _real.getenv("BRT_DEVHOST") or _radio_on():
        return _real.urandom(n)
    if not _state[0]:
        import machine
        x = 2166136261
        for b in machine.unique_id():
            x = ((x ^ b) * 16777619) & 0xFFFFFFFF
        _state[0] = x or 1
    out = bytearray(n)
    x = _state[0]
    for i in range(n):
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        out[i] = x & 0xFF
    _state[0] = x
    return bytes(out)
