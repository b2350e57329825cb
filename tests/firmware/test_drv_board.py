# board.py on the virtual board: the reference wiring finds every chip, a part that fails
# is reported (not raised), and set_time() makes the RTC trusted.
# mp-path: sim/vboard  (the virtual machine module)
# mp-devhost: hsu
import json

import machine

import board


def ctl(cmd, **kw):
    kw["cmd"] = cmd
    return json.loads(machine.sim_control(json.dumps(kw)))


def test_pin_map_matches_the_device_host_wiring():
    assert (board.PN532_UART, board.QR_UART, board.I2C_ID) == (1, 2, 0)
    assert (board.OLED_ADDR, board.RTC_ADDR, board.PN532_ADDR) == (0x3C, 0x68, 0x24)
    assert (board.PIN_GREEN, board.PIN_RED, board.PIN_BUZZER) == (4, 5, 6)


def test_build_talks_to_nothing_and_start_reports_each_part():
    ctl("uart.log", uart=1, clear=True)
    b = board.build()
    assert ctl("uart.log", uart=1)["tx"] == ""  # building touched no chip
    parts = dict((n, (ok, d)) for n, ok, d in b.start())
    # the faster wires: PN532 switched to 460800, a GM65 as shipped found at 9600 and
    # switched to 115200 (saved)
    assert parts["nfc"] == (True, "PN532 v1.6 460800 baud")
    assert parts["qr"] == (True, "115200 baud (found at 9600: switched and saved)")
    assert parts["display"][0]
    assert parts["rtc"][0] and "unset" in parts["rtc"][1]
    assert board.get() is b  # selftest and set_time use the board the app built


def test_failing_part_is_reported_not_raised():
    ctl("device", part="ds3231", present=False)
    ctl("device", part="pn532", present=False)
    try:
        parts = dict((n, (ok, d)) for n, ok, d in board.get().start())
    finally:
        ctl("device", part="ds3231", present=True)
        ctl("device", part="pn532", present=True)
    assert parts["rtc"][0] is False and "DS3231Error" in parts["rtc"][1]
    assert parts["nfc"][0] is False and "PN532Timeout" in parts["nfc"][1]
    assert parts["display"][0] is True


def test_set_time_and_selftest():
    board.set_time(1767312245)
    assert ctl("rtc.get")["osf"] is False
    parts = dict((n, (ok, d)) for n, ok, d in board.selftest())
    assert parts["rtc"][0] and "unset" not in parts["rtc"][1]
