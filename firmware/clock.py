# Wall-clock time as Unix seconds on every port.
#
# The ESP32 port's time.time() counts from 2000-01-01, the unix port's from 1970-01-01;
# tokens (CWT iat/exp), the journal and the depot all speak Unix time, so the firmware
# converts once, here. The epoch is detected from the port itself (gmtime(0)), not
# hard-coded per board, so the same .mpy runs on both.
#
# Note for 32-bit boards: Unix times (~1.8e9) exceed MicroPython's small-int range
# (2**30) on the ESP32, so each value is a heap-allocated long int there; hot paths
# should keep times as they are and not create them in tight loops.
import time

from micropython import const

EPOCH_2000_OFFSET = const(946684800)  # seconds from 1970-01-01 to 2000-01-01 (UTC)

# Before this instant a clock is taken as unset (DS3231 reset to 2000, RTC lost power).
PLAUSIBLE_MIN = const(1735689600)  # 2025-01-01T00:00:00Z
PLAUSIBLE_MAX = const(2524608000)  # 2050-01-01T00:00:00Z


def epoch_offset(gmtime=time.gmtime):
    """Seconds to add to this port's time.time() to get Unix time."""
    return EPOCH_2000_OFFSET if gmtime(0)[0] == 2000 else 0


_OFFSET = epoch_offset()


def unix_now(now=time.time, offset=None):
    """Unix seconds now; `now`/`offset` are injectable so both epochs can be tested."""
    # int(): the unix port returns a float, the ESP32 an int
    return int(now()) + (_OFFSET if offset is None else offset)


def to_port(unix_seconds, offset=None):
    """Convert Unix seconds to this port's epoch (e.g. to set machine.RTC)."""
    return unix_seconds - (_OFFSET if offset is None else offset)


def plausible(unix_seconds):
    """True if the time could be real; an unset or corrupted clock is not."""
    return PLAUSIBLE_MIN <= unix_seconds < PLAUSIBLE_MAX


def civil(unix_seconds, offset=None):
    """(year, month, day, hour, minute, second, weekday, yearday) in UTC for Unix seconds."""
    return time.gmtime(to_port(unix_seconds, offset))


def set_system(unix_seconds, offset=None):
    """Set the port's own clock (machine.RTC, what time.time() reads) to Unix seconds.

    On the ESP32 time.time() starts at 2000-01-01 at every power-up and only
    machine.RTC().datetime(...) moves it (ports/esp32/machine_rtc.c): the validator sets
    it from the DS3231 at boot and after every depot time update, so anything that reads
    time.time() (unix_now) agrees with the trusted clock. Returns False if the port has
    no settable RTC (the plain unix port)."""
    try:
        import machine
        t = time.gmtime(to_port(unix_seconds, offset))
        machine.RTC().datetime((t[0], t[1], t[2], t[6], t[3], t[4], t[5], 0))
    except (AttributeError, OSError, ImportError):
        return False
    return True
