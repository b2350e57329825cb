# Self-test of a provisioned validator, run by the depot tool through maint.selftest().
#
# Each check returns {"name", "ok", "detail"}; ok is True, False, or None when the part
# it needs is not in this firmware build (reported as "skipped", never as passed).
# Hardware is reached only through board.py (the one board file), so this file holds no
# pins; a check that raises is a failed check with the exception as its detail.
import os
import sys
import time

import clock
from micropython import const

MIN_FREE = const(32768)  # bytes free on /data below which taps and bundles are at risk


def _result(name, ok, detail):
    return {"name": name, "ok": ok, "detail": detail}


def _board():
    try:
        import board  # type: ignore[import-not-found]
    except ImportError:
        return None
    return board


def check_clock():
    a = clock.unix_now()
    t0 = time.ticks_ms()
    time.sleep_ms(1100)
    b = clock.unix_now()
    ms = time.ticks_diff(time.ticks_ms(), t0)
    if not clock.plausible(b):
        return _result("clock", False, "clock unset or implausible: %d" % b)
    if not 1 <= b - a <= 2:
        return _result("clock", False, "advanced %d s in %d ms" % (b - a, ms))
    return _result("clock", True, "running, unix %d" % b)


def check_storage(path="/data"):
    st = os.statvfs(path)
    free = st[0] * st[3]
    return _result("storage", free >= MIN_FREE, "%d bytes free" % free)


def check_config():
    from app import config
    try:
        c = config.load("/data/config.json")
    except config.ConfigError as e:
        return _result("config", False, str(e))
    return _result("config", True, "bus %s route %s" % (c.bus, c.route))


def check_bundles():
    import bundles
    got = []
    for kind in (bundles.TRUST, bundles.FARES):
        h = bundles.installed_header("/data", kind)
        if h is None:
            return _result("bundles", False, "%s missing" % bundles.FILES[kind])
        got.append("%s v%d" % (bundles.FILES[kind], h.version))
    return _result("bundles", True, ", ".join(got))


def check_journal():
    """The journal recovers: mount() scans it as after a power cut (formats a blank one)."""
    try:
        import esp32
    except ImportError:
        return _result("journal", None, "no esp32 module on this port")
    found = esp32.Partition.find(esp32.Partition.TYPE_DATA, label="journal")
    if not found:
        return _result("journal", False, "no 'journal' partition on the flash")
    from journal import Journal, JournalError
    try:
        st = Journal(found[0]).mount()
    except JournalError as e:
        return _result("journal", False, str(e))
    return _result("journal", st.lost == 0,
                   "%d records, %d unsent, %d torn%s, %d bytes free" % (
                       st.count, st.unsent, st.torn, ", formatted" if st.formatted else "",
                       st.free))


def check_parts():
    """NFC reader, QR scanner, display, RTC chip and journal, through board.py."""
    b = _board()
    if b is None or not hasattr(b, "selftest"):
        return [_result(n, None, "not in this firmware (no board.selftest)")
                for n in ("nfc", "qr", "display", "rtc")]
    try:
        got = b.selftest()
    except Exception as e:  # noqa: BLE001 - the board could not even be built
        why = "board: %s: %s" % (type(e).__name__, e)
        return [_result(n, False, why) for n in ("nfc", "qr", "display", "rtc")]
    out = []
    for name, ok, detail in got:
        out.append(_result(name, ok, detail))
    return out


def run():
    # each check runs on as clean a heap as possible: what it imported is dropped after it
    # (the P-256 tables, the journal, the drivers would not fit side by side in ~110 KB)
    import maint_lock
    res = []
    for fn in (check_clock, check_storage, check_config, check_bundles, check_journal,
               check_parts):
        before = set(sys.modules)
        try:
            r = fn()
            if isinstance(r, list):
                res.extend(r)
            else:
                res.append(r)
        except Exception as e:  # noqa: BLE001 - a check that raises has failed
            res.append(_result(fn.__name__[6:], False, "%s: %s" % (type(e).__name__, e)))
        maint_lock.drop_modules(before)
    return res


def set_clock(unix):
    """Set the board's clocks to Unix time `unix`; returns what the clock reads back."""
    import machine
    t = clock.civil(unix)
    machine.RTC().datetime((t[0], t[1], t[2], t[6], t[3], t[4], t[5], 0))
    b = _board()
    detail = "rtc"
    if b is not None and hasattr(b, "set_time"):
        b.set_time(unix)
        detail = "rtc+ds3231"
    d = machine.RTC().datetime()
    # mktime counts in this port's epoch; to_port(0) is minus the offset to Unix time
    back = time.mktime((d[0], d[1], d[2], d[4], d[5], d[6], 0, 0)) - clock.to_port(0)
    return {"set": unix, "read": back, "via": detail}
