# GM65 QR scanner driver against the virtual scanner: exact command frames, replies,
# scanned lines, noise, partial and over-long lines, a silent module.
# mp-path: sim/vboard  (the virtual machine module)
# mp-devhost: hsu      (the scanner is on UART2 in every wiring)
import json
import time

import machine

from drivers.gm65 import GM65, GM65LineError, GM65ReplyError, GM65Timeout


def ctl(cmd, **kw):
    kw["cmd"] = cmd
    r = json.loads(machine.sim_control(json.dumps(kw)))
    assert "error" not in r, r
    return r


def xmodem(data):
    c = 0
    for b in data:
        c ^= b << 8
        for _ in range(8):
            c = ((c << 1) ^ 0x1021) & 0xFFFF if c & 0x8000 else (c << 1) & 0xFFFF
    return c


def cmd_frame(typ, addr, data):
    """7E 00 | type | len | addr hi lo | data | CRC-16/XMODEM(type..data), per the manual."""
    body = bytes((typ, len(data), addr >> 8, addr & 0xFF)) + bytes(data)
    c = xmodem(body)
    return b"\x7e\x00" + body + bytes((c >> 8, c & 0xFF))


def fresh(**kw):
    ctl("qr.state", reset=True, baud=9600)
    ctl("uart.log", uart=2, clear=True)
    return GM65(machine.UART(2, 9600, timeout=10, timeout_char=5), **kw)


def wire():
    return bytes.fromhex(ctl("uart.log", uart=2, clear=True)["tx"])


def wait_line(g, ms=1000):
    t0 = time.ticks_ms()
    while time.ticks_diff(time.ticks_ms(), t0) < ms:
        line = g.poll()
        if line is not None:
            return bytes(line)
        time.sleep_ms(5)
    return None


# the GM65 manual's own examples (§8.2-8.4), byte for byte
MANUAL_READ_0A = bytes.fromhex("7e000701000a01ee8a")
MANUAL_READ_0A_REPLY = bytes.fromhex("02000001" "3ee4ac")
MANUAL_WRITE_0A_3E = bytes.fromhex("7e000801000a3e4ccf")
MANUAL_OK_REPLY = bytes.fromhex("02000001003331")
MANUAL_SAVE = bytes.fromhex("7e0009010000" "00dec8")


def test_frame_builder_matches_manual_examples():
    assert cmd_frame(0x09, 0x0000, b"\x00") == MANUAL_SAVE
    assert cmd_frame(0x07, 0x000A, b"\x01") == MANUAL_READ_0A
    assert cmd_frame(0x08, 0x000A, b"\x3e") == MANUAL_WRITE_0A_3E
    assert xmodem(MANUAL_OK_REPLY[2:5]) == 0x3331
    assert xmodem(MANUAL_READ_0A_REPLY[2:5]) == 0xE4AC


def test_manual_write_and_read_exchange_on_the_wire():
    g = fresh()
    g.write_zone(0x000A, b"\x3e")
    assert g.read_zone(0x000A) == b"\x3e"
    log = ctl("uart.log", uart=2, clear=True)
    assert bytes.fromhex(log["tx"]) == MANUAL_WRITE_0A_3E + MANUAL_READ_0A
    assert bytes.fromhex(log["rx"]) == MANUAL_OK_REPLY + MANUAL_READ_0A_REPLY


def test_configure_exact_bytes_and_idempotent():
    g = fresh()
    g.configure()
    assert wire() == (cmd_frame(0x07, 0x0000, b"\x01") + cmd_frame(0x08, 0x0000, b"\xd7") +
                      cmd_frame(0x07, 0x0060, b"\x01") + cmd_frame(0x08, 0x0060, b"\x80"))
    st = ctl("qr.state")
    assert st["mode"] == 3 and st["tail"] == 0x80
    g.configure()  # already right: only reads
    assert wire() == cmd_frame(0x07, 0x0000, b"\x01") + cmd_frame(0x07, 0x0060, b"\x01")
    g.save()
    assert wire() == cmd_frame(0x09, 0x0000, b"\x00")


def test_unconfigured_scanner_reads_nothing():
    g = fresh()
    assert ctl("qr.show", text="BRT1:ABC")["read"] is False
    assert wait_line(g, 100) is None


def test_scan_line():
    g = fresh()
    g.configure()
    assert ctl("qr.show", text="BRT1:6BFOXN*TS0BI$ZD.P9UOL97O4-2HH77HRM3DSPTLRR+%3")["read"]
    assert wait_line(g) == b"BRT1:6BFOXN*TS0BI$ZD.P9UOL97O4-2HH77HRM3DSPTLRR+%3"
    assert g.poll() is None


def test_two_lines_in_one_read():
    g = fresh()
    g.configure()
    ctl("qr.noise", hex=b"AAA\rBBB\r".hex())
    assert wait_line(g) == b"AAA"
    assert wait_line(g) == b"BBB"


def test_noise_makes_a_line_unusable_then_recovers():
    g = fresh()
    g.configure()
    ctl("qr.noise", hex="41ff0042130d")  # non-text bytes, then the terminator
    time.sleep_ms(30)
    try:
        wait_line(g)
        raise AssertionError("noisy line accepted")
    except GM65LineError as e:
        assert e.why == "noise"
    ctl("qr.show", text="BRT1:OK")
    assert wait_line(g) == b"BRT1:OK"


def test_partial_line_is_dropped_after_a_stall():
    g = fresh()
    g.configure()
    ctl("qr.noise", hex=b"BRT1:HALF".hex())
    time.sleep_ms(30)
    assert g.poll() is None
    time.sleep_ms(120)   # a pause as long as a FIFO burst at 9600 baud: not a stall
    assert g.poll() is None and g.dropped == 0
    time.sleep_ms(130)   # now over the 200 ms stall limit
    assert g.poll() is None and g.dropped == 1
    ctl("qr.show", text="BRT1:WHOLE")
    assert wait_line(g) == b"BRT1:WHOLE"


def test_over_long_line_is_refused_within_bound():
    g = fresh(max_line=64)
    g.configure()
    ctl("qr.show", text="X" * 200)
    try:
        wait_line(g, 2000)
        raise AssertionError("over-long line accepted")
    except GM65LineError as e:
        assert e.why == "too long"
    ctl("qr.show", text="Y" * 64)
    assert wait_line(g) == b"Y" * 64


def test_silent_scanner_and_wrong_baud_time_out():
    g = fresh(reply_timeout_ms=100)
    ctl("qr.state", silent=True)
    t0 = time.ticks_ms()
    try:
        g.configure()
        raise AssertionError("configured a silent scanner")
    except GM65Timeout:
        pass
    assert time.ticks_diff(time.ticks_ms(), t0) < 1500  # 2 x 100 ms reply waits
    ctl("qr.state", silent=False, baud=115200)  # module set to another rate
    try:
        g.configure()
        raise AssertionError("configured over the wrong baud rate")
    except GM65Timeout:
        pass


def test_bad_replies():
    g = fresh()
    for fault, words in (("bad_crc", "CRC"), ("fail", "failed"), ("truncate", "truncated")):
        ctl("qr.state", faults=[fault])
        try:
            g.read_zone(0)
            raise AssertionError("bad reply accepted: " + fault)
        except GM65ReplyError as e:
            assert words in str(e), (fault, str(e))
    assert g.read_zone(0) == b"\xd4"


def test_command_while_a_scan_is_on_the_wire():
    g = fresh(reply_timeout_ms=1500)
    g.configure()
    ctl("qr.show", text="Q" * 300)  # 301 bytes: about 310 ms at 9600 baud
    time.sleep_ms(50)
    assert g.read_zone(0x0000) == b"\xd7"  # the reply is found after the scan's bytes
    assert g.poll() is None  # what was left of the scan is not taken for a line


# --- the faster wire: the baud-rate zone (0x002A, docs/drivers.md) ----------------------

READ_BAUD = bytes.fromhex("7e000701002a02d80f")  # the manual's own "query the baud rate"
SET_115200 = cmd_frame(0x08, 0x002A, b"\x1a\x00")  # divisor 0x001A, little-endian
SAVE = bytes.fromhex("7e0009010000" "00dec8")


def fast_gm65():
    ctl("uart.log", uart=2, clear=True)
    return GM65(machine.UART(2, 115200, timeout=10, timeout_char=0), baud=115200,
                fast_baud=115200)


def test_a_scanner_still_at_9600_is_found_switched_and_saved():
    ctl("qr.state", reset=True)  # as shipped: 9600
    g = fast_gm65()
    assert g.connect() == 9600 and g.baud == 115200
    # asked at 115200 (no answer), again at 9600, the zone written (answered at 9600),
    # read back at 115200, saved to the module's EEPROM
    assert SET_115200 == bytes.fromhex("7e000802002a1a00e47e")
    assert wire() == READ_BAUD + READ_BAUD + SET_115200 + READ_BAUD + SAVE
    st = ctl("qr.state")
    assert st["baud"] == 115200 and st["saved_baud"] == 115200
    # it persists: after a power cycle the module answers at 115200 straight away
    st = ctl("qr.state", power_cycle=True)
    assert st["baud"] == 115200
    g = fast_gm65()
    assert g.connect() == 115200 and wire() == READ_BAUD
    g.configure()
    ctl("qr.show", text="BRT1:FAST")
    assert wait_line(g) == b"BRT1:FAST"


def test_a_silent_scanner_times_out_at_both_rates():
    ctl("qr.state", reset=True, silent=True)
    g = fast_gm65()
    try:
        g.connect()
        raise AssertionError("no timeout")
    except GM65Timeout:
        pass
    assert wire() == READ_BAUD + READ_BAUD
    ctl("qr.state", reset=True)
