# DS3231 driver against the virtual RTC: BCD registers byte for byte, the oscillator-stop
# flag, an unset chip, invalid registers, a missing chip; the calendar arithmetic.
# mp-path: sim/vboard  (the virtual machine module)
# mp-devhost: hsu
import json

import machine

from drivers.ds3231 import DS3231, DS3231Error, civil_from_days, days_from_civil


def ctl(cmd, **kw):
    kw["cmd"] = cmd
    r = json.loads(machine.sim_control(json.dumps(kw)))
    assert "error" not in r, r
    return r


def rtc():
    ctl("device", part="ds3231", present=True)
    return DS3231(machine.I2C(0))


def test_calendar_against_known_dates():
    assert days_from_civil(1970, 1, 1) == 0
    assert days_from_civil(2000, 1, 1) == 10957
    assert days_from_civil(2024, 2, 29) == 19782
    assert days_from_civil(2100, 3, 1) == 47541
    for z in (0, 10957, 19782, 47541, 20453, 59):
        assert days_from_civil(*civil_from_days(z)) == z


def test_unset_chip_is_untrusted():
    # a fresh virtual chip holds 2000-01-01 with OSF set (first power-up)
    r = rtc()
    t, trusted = r.now()
    assert not trusted and r.lost_power()
    assert 946684800 <= t < 946684800 + 60


def test_set_time_exact_registers_and_osf_cleared():
    r = rtc()
    ctl("i2c.log", clear=True)
    r.set_time(1767312245)  # 2026-01-02T00:04:05Z, a Friday
    w = [bytes.fromhex(d) for k, a, d in ctl("i2c.log", addr=0x68)["log"] if k == "w"]
    assert w[0] == bytes((0x00, 0x05, 0x04, 0x00, 0x05, 0x02, 0x01, 0x26))
    assert w[-1] == bytes((0x0F, 0x00))  # OSF (bit 7) written 0
    t, trusted = r.now()
    assert trusted and 1767312245 <= t <= 1767312247
    assert ctl("rtc.get")["osf"] is False


def test_host_side_clock_is_read():
    r = rtc()
    ctl("rtc.set", time=4102444800 + 3600 * 13 + 7, clear_osf=True)  # 2100-01-01 13:00:07
    t, trusted = r.now()
    assert trusted and t - (4102444800 + 3600 * 13 + 7) in (0, 1)


def test_oscillator_stop_is_reported():
    r = rtc()
    ctl("rtc.set", time=1767312245, clear_osf=True)
    ctl("rtc.set", stop=True)
    assert r.lost_power()
    assert r.now()[1] is False


def test_garbage_registers_raise():
    r = rtc()
    machine.I2C(0).writeto(0x68, b"\x00\x7a\x61")  # seconds 7A: not BCD
    try:
        r.read_time()
        raise AssertionError("non-BCD time accepted")
    except DS3231Error:
        pass
    machine.I2C(0).writeto(0x68, b"\x00\x00\x00\x00\x01\x32\x13\x26")  # 32nd of month 13
    try:
        r.read_time()
        raise AssertionError("impossible date accepted")
    except DS3231Error:
        pass
    r.set_time(1767312245)
    assert r.read_time() - 1767312245 in (0, 1)


def test_out_of_range_and_missing_chip():
    r = rtc()
    try:
        r.set_time(0)  # 1970: before the chip's century
        raise AssertionError("1970 written")
    except DS3231Error:
        pass
    ctl("device", part="ds3231", present=False)
    try:
        r.now()
        raise AssertionError("read a missing chip")
    except DS3231Error:
        pass
    ctl("device", part="ds3231", present=True)
