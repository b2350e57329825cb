# The virtual board's `time` (MicroPython, simulator only): the ESP32 port's clock and
# ticks on the unix port. On MICROPYPATH=firmware:sim/vboard this file replaces the
# built-in `time` (an extensible built-in); the built-in is still used underneath.
#
# What the board does and the unix port does not (docs/simulator.md, "Board fidelity"):
# - ticks_ms()/ticks_us() wrap at 2**30 (MICROPY_PY_TIME_TICKS_PERIOD is the small-int
#   range: 31-bit objects on the 32-bit ESP32; extmod/modtime.c), ticks_ms after ~12.4
#   days, ticks_us after ~17.9 minutes. The 64-bit unix port wraps at 2**62, i.e. never.
#   BRT_TICKS_START="wrap-5000" starts ticks_ms 5 s before a wrap (any ms value works).
# - ticks_diff()/ticks_add() take small ints only: extmod/modtime.c reads their first
#   argument(s) with MP_OBJ_SMALL_INT_VALUE, so a big int (e.g. ticks_ms() + timeout near
#   the wrap) gives garbage on the board. Here it raises ValueError, so the bug shows.
#   ticks_add's delta must lie in (-2**29, 2**29) (OverflowError, as in modtime.c).
# - time.time() counts seconds from 2000-01-01 (ports/esp32/modtime.c: gettimeofday, and
#   MicroPython's 2000 epoch on the ESP32), and at power-up it starts at 0: only
#   machine.RTC().datetime(...) moves it (ports/esp32/machine_rtc.c: settimeofday).
#   The board's system time survives machine.reset() and the watchdog (ESP-IDF "System
#   Time": the RTC timer is reset only at power-on), so it lives in the device host.
#   Without a device host (BRT_DEVHOST unset) every process is a fresh power-up.
# - gmtime()/localtime()/mktime() on the 2000 epoch, 8-tuples, no time zone
#   (shared/timeutils).
import sys

_p = sys.path
sys.path = []
try:
    import time as _t  # the unix port's built-in time
finally:
    sys.path = _p
del _p

from micropython import const  # noqa: E402

_PERIOD = const(0x40000000)  # 2**30
_MASK = const(0x3FFFFFFF)
_HALF = const(0x20000000)
_EPOCH_1970_TO_2000 = const(946684800)

sleep = _t.sleep
sleep_ms = _t.sleep_ms
sleep_us = _t.sleep_us


_T0_MS = _t.ticks_ms()
_T0_US = _t.ticks_us()
_OFF_MS = 0
_spec = __import__("os").getenv("BRT_TICKS_START")
if _spec:
    _OFF_MS = ((_PERIOD - int(_spec[5:])) if _spec.startswith("wrap-") else int(_spec)) & _MASK
_OFF_US = (_OFF_MS * 1000) & _MASK
del _spec


def ticks_ms():
    return (_t.ticks_diff(_t.ticks_ms(), _T0_MS) + _OFF_MS) & _MASK


def ticks_us():
    return (_t.ticks_diff(_t.ticks_us(), _T0_US) + _OFF_US) & _MASK


def ticks_cpu():
    return ticks_us()


def _small(v):
    # a value ticks_diff/ticks_add can take on the ESP32: a 31-bit small int
    if not isinstance(v, int) or v < -_PERIOD or v >= _PERIOD:
        raise ValueError("ticks value %r is not a small int on the ESP32 "
                         "(use ticks_add, not +)" % (v,))
    return v


def ticks_diff(end, start):
    return ((_small(end) - _small(start) + _HALF) & _MASK) - _HALF


def ticks_add(ticks, delta):
    if delta <= -_HALF or delta >= _HALF:
        raise OverflowError("ticks interval overflow")
    return (_small(ticks) + delta) & _MASK


# --- the system clock (seconds since 2000) -------------------------------------------

_rtc = [None, 0]  # [seconds since 2000 at the reference, built-in ticks_us then]


def _rtc_load():
    import os
    base = 0.0
    if os.getenv("BRT_DEVHOST"):
        import json

        import machine
        try:
            base = float(json.loads(machine.sim_control('{"cmd": "board.rtc"}'))["time"])
        except (OSError, ValueError, KeyError):
            pass  # a link server without the board clock (sim/bareboard.py): power-up
    _rtc[0] = base
    _rtc[1] = _t.ticks_us()


def _now_f():
    if _rtc[0] is None:
        _rtc_load()
    return _rtc[0] + _t.ticks_diff(_t.ticks_us(), _rtc[1]) / 1000000


def _rtc_set(seconds_2000):
    """machine.RTC().datetime(...) lands here: the system clock now reads seconds_2000."""
    import os
    _rtc[0] = seconds_2000
    _rtc[1] = _t.ticks_us()
    if os.getenv("BRT_DEVHOST"):
        import machine
        try:
            machine.sim_control('{"cmd": "board.rtc", "set": %d}' % seconds_2000)
        except OSError:
            pass  # kept in this process only (sim/bareboard.py)


def time():
    return int(_now_f())


def time_ns():
    return int(_now_f() * 1000000) * 1000


def gmtime(secs=None):
    # the unix port's gmtime is UTC with the 1970 epoch (a 9-tuple): shift and cut
    return _t.gmtime((time() if secs is None else int(secs)) + _EPOCH_1970_TO_2000)[:8]


localtime = gmtime


def mktime(t):
    # integer calendar arithmetic (the unix port's mktime is local time)
    y, m = t[0], t[1]
    if m <= 2:
        y -= 1
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + t[2] - 1
    days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
    return days * 86400 + t[3] * 3600 + t[4] * 60 + t[5] - _EPOCH_1970_TO_2000
