# The clock helper, under MicroPython, with both epochs simulated.
import clock


def _gmtime_from(year):
    def gm(t):
        return (year, 1, 1, 0, 0, 0, 0, 1) if t == 0 else None
    return gm


def test_epoch_detected_from_port():
    assert clock.epoch_offset(_gmtime_from(2000)) == 946684800
    assert clock.epoch_offset(_gmtime_from(1970)) == 0


def test_unix_now_on_esp32_epoch():
    # 2026-11-29T00:00:00Z is 1795910400 Unix; an ESP32 counts 2000-based seconds.
    esp_seconds = 1795910400 - 946684800
    off = clock.epoch_offset(_gmtime_from(2000))
    assert clock.unix_now(lambda: esp_seconds, off) == 1795910400
    assert clock.to_port(1795910400, off) == esp_seconds


def test_unix_now_on_unix_epoch():
    off = clock.epoch_offset(_gmtime_from(1970))
    assert clock.unix_now(lambda: 1795910400, off) == 1795910400
    assert clock.to_port(1795910400, off) == 1795910400


def test_this_port_is_unix_epoch_and_now_is_plausible():
    import time
    assert time.gmtime(0)[0] == 1970  # the unix port
    now = clock.unix_now()
    assert abs(now - time.time()) <= 1
    assert clock.plausible(now)


def test_plausibility_bounds():
    assert not clock.plausible(0)
    assert not clock.plausible(946684800)  # a DS3231 reset to 2000-01-01
    assert clock.plausible(1795910400)
    assert not clock.plausible(2524608000)


def test_civil_time_of_a_known_instant():
    # 2026-11-29T15:16:00Z
    t = clock.civil(1795965360, 0)
    assert t[:6] == (2026, 11, 29, 15, 16, 0)
