# PN532 driver over HSU against the virtual PN532: exact frames on the wire, taps, and
# every way the chip or the phone can fail.
# mp-path: sim/vboard  (the virtual machine module)
# mp-devhost: hsu      (PN532 on UART1, as on the reference board)
import json
import time

import machine

from drivers.pn532 import (
    PN532, PN532CommandError, PN532Error, PN532FrameError, PN532PhoneError, PN532TargetGone,
    PN532Timeout, UartLink,
)


def ctl(cmd, **kw):
    kw["cmd"] = cmd
    r = json.loads(machine.sim_control(json.dumps(kw)))
    assert "error" not in r, r
    return r


# --- frames as UM0701-02 §6.2.1 writes them -------------------------------------------

def host_frame(*data):
    """Normal information frame host -> PN532: 00 00 FF LEN LCS D4 data DCS 00."""
    d = bytes((0xD4,) + data)
    n = len(d)
    return bytes((0x00, 0x00, 0xFF, n, (0x100 - n) & 0xFF)) + d + \
        bytes(((0x100 - sum(d)) & 0xFF, 0x00))


ACK = bytes.fromhex("0000ff00ff00")
NACK = bytes.fromhex("0000ffff0000")
WAKE = b"\x55\x55" + bytes(14)
# the datasheet's own examples, byte for byte
GET_FIRMWARE_VERSION = bytes.fromhex("0000ff02fed4022a00")
SAM_NORMAL = bytes.fromhex("0000ff05fbd4140100001700")


def fresh(card=None, **kw):
    ctl("card.remove")
    ctl("pn532.fault", power_on=True, silent=False)
    h = ctl("pn532.state")
    assert not h["sam"] and not h["awake"]
    ctl("uart.log", uart=1, clear=True)
    if card is not None:
        ctl("card.present", **card)
    u = machine.UART(1, 115200, timeout=10, timeout_char=3)
    return PN532(UartLink(u), **kw)


def wire():
    return bytes.fromhex(ctl("uart.log", uart=1, clear=True)["tx"])


def raises(exc, fn, *a):
    try:
        fn(*a)
    except exc as e:
        return e
    raise AssertionError("%s not raised" % exc.__name__)


def test_builder_matches_datasheet_examples():
    assert host_frame(0x02) == GET_FIRMWARE_VERSION
    assert host_frame(0x14, 0x01, 0x00, 0x00) == SAM_NORMAL


def test_begin_exact_bytes():
    p = fresh()
    assert p.begin(passive_retries=1) == (0x32, 1, 6, 7)
    assert wire() == (WAKE + SAM_NORMAL + GET_FIRMWARE_VERSION +
                      host_frame(0x32, 0x05, 0xFF, 0x01, 0x01))
    st = ctl("pn532.state")
    assert st["sam"] and st["mx_rty_passive"] == 1


def test_commands_before_sam_are_refused_by_the_chip():
    p = fresh()
    p.link.wake()
    e = raises(PN532CommandError, p.list_target)
    assert "error frame" in str(e)


def test_no_target_is_none_and_bounded():
    p = fresh()
    p.begin(passive_retries=2)
    wire()
    t0 = time.ticks_ms()
    assert p.list_target() is None
    assert time.ticks_diff(time.ticks_ms(), t0) < 2000  # bounded (3 attempts x 4 ms modelled), not a hang
    assert wire() == host_frame(0x4A, 0x01, 0x00)


def test_tap_and_exchange_exact_bytes():
    p = fresh({"echo": True, "uid": "08a1b2c3", "ats": "0578807002"})
    p.begin()
    t = p.list_target()
    assert t.uid == b"\x08\xa1\xb2\xc3" and t.sens_res == b"\x00\x04" and t.sel_res == 0x20
    assert t.ats == b"\x05\x78\x80\x70\x02" and t.iso_dep()
    wire()
    apdu = b"\x00\xa4\x04\x00\x05\xf0\x42\x52\x54\x31\x00"
    r = p.exchange(apdu)
    assert bytes(r) == apdu + b"\x90\x00"
    assert wire() == host_frame(0x40, 0x01, *apdu)
    log = ctl("card.log")["apdus"]
    assert log[-1] == [apdu.hex(), (apdu + b"\x90\x00").hex()]


def test_long_apdu_uses_extended_frame_rules():
    p = fresh({"echo": True})
    p.begin()
    p.list_target()
    apdu = bytes(range(250))  # 250 + TFI + CMD + Tg = 253: still a normal frame
    assert bytes(p.exchange(apdu))[:250] == apdu
    raises(PN532Error, p.exchange, bytes(300))  # over the chip's 262-byte limit


def test_bad_checksum_answer_is_nacked_and_recovered():
    p = fresh()
    p.begin()
    wire()
    ctl("pn532.fault", faults=["bad_dcs"])
    assert p.firmware_version() == (0x32, 1, 6, 7)
    assert wire() == GET_FIRMWARE_VERSION + NACK  # the NACK asked for the answer again


def test_bad_lcs_and_garbage_resync():
    p = fresh()
    p.begin()
    ctl("pn532.fault", faults=["bad_lcs"])
    assert p.firmware_version()[0] == 0x32
    ctl("pn532.fault", faults=["garbage"])
    assert p.firmware_version()[0] == 0x32
    ctl("uart.inject", uart=1, hex="ff00ff13370000")  # stray bytes before a command
    assert p.firmware_version()[0] == 0x32


def test_persistent_bad_answers_raise_frame_error():
    p = fresh(retries=1)
    p.begin()
    ctl("pn532.fault", faults=["bad_dcs", "bad_dcs", "bad_dcs"])
    raises(PN532FrameError, p.firmware_version)


def test_truncated_answer():
    p = fresh(retries=0)
    p.begin()
    ctl("pn532.fault", faults=["truncate"])
    t0 = time.ticks_ms()
    raises(PN532FrameError, p.firmware_version)
    assert time.ticks_diff(time.ticks_ms(), t0) < 1000


def test_nack_and_error_frame_from_chip():
    p = fresh(retries=0)
    p.begin()
    ctl("pn532.fault", faults=["error_frame"])
    raises(PN532CommandError, p.firmware_version)
    ctl("pn532.fault", faults=["nack"])
    raises(PN532FrameError, p.firmware_version)
    assert p.firmware_version()[0] == 0x32  # and the next command works


def test_lost_ack_is_retried():
    p = fresh()
    p.begin()
    wire()
    ctl("pn532.fault", faults=["no_ack"])
    assert p.firmware_version()[0] == 0x32
    assert wire() == GET_FIRMWARE_VERSION * 2


def test_silent_chip_times_out_quickly():
    p = fresh(ack_timeout_ms=30, retries=2)
    ctl("pn532.fault", silent=True)
    t0 = time.ticks_ms()
    e = raises(PN532Timeout, p.begin)
    assert not e.acked
    assert time.ticks_diff(time.ticks_ms(), t0) < 2000  # 3 x 30 ms ACK waits
    ctl("pn532.fault", silent=False)


def test_answer_missing_after_ack():
    p = fresh(timeout_ms=60)
    p.begin()
    ctl("pn532.fault", faults=["no_response"])
    e = raises(PN532Timeout, p.firmware_version)
    assert e.acked


def test_target_removed_mid_exchange():
    p = fresh({"echo": True, "leave_after": 1})
    p.begin()
    assert p.list_target() is not None
    assert bytes(p.exchange(b"\x00\xa4\x04\x00"))[-2:] == b"\x90\x00"
    e = raises(PN532TargetGone, p.exchange, b"\x80\x54\x00\x00")
    assert e.status == 0x01
    raises(PN532TargetGone, p.exchange, b"\x00")  # no target listed any more
    assert p.list_target() is None


def test_exchange_without_target():
    p = fresh()
    p.begin()
    raises(PN532TargetGone, p.exchange, b"\x00\xa4")


def test_unbounded_polling_is_aborted_by_deadline():
    # a chip left at MxRtyPassiveActivation 0xFF (power-up default) polls forever; the
    # driver's deadline aborts it with an ACK and reports no card
    p = fresh(timeout_ms=80)
    p.link.wake()
    p.sam_configuration()
    t0 = time.ticks_ms()
    assert p.list_target() is None
    assert time.ticks_diff(time.ticks_ms(), t0) < 1500  # 80 ms deadline + abort
    assert wire().endswith(ACK)
    assert p.firmware_version()[0] == 0x32  # the chip is usable again


def test_seven_byte_uid_without_iso_dep():
    # a MIFARE-like card: double-size UID, SEL_RES without the ISO-DEP bit, so no ATS
    p = fresh({"echo": True, "uid": "04a1b2c3d4e5f6", "sel_res": 0, "sens_res": "0044"})
    p.begin()
    t = p.list_target()
    assert t.uid == bytes.fromhex("04a1b2c3d4e5f6") and t.ats == b"" and not t.iso_dep()
    assert t.sens_res == b"\x00\x44"


def test_answer_too_long_for_the_chip_is_a_typed_error():
    p = fresh({"apdus": {"00b0000000": "00" * 300 + "9000"}})
    p.begin()
    p.list_target()
    e = raises(PN532CommandError, p.exchange, bytes.fromhex("00b0000000"))
    assert e.status == 0x07
    # the phone's fault, not the reader's (the loop keeps the reader in service)
    assert isinstance(e, PN532PhoneError) and e.too_long


def test_a_garbled_answer_from_the_phone_is_a_phone_error_and_the_target_stays():
    p = fresh({"apdus": {"00b0000000": "1234" + "9000"}})
    p.begin()
    p.list_target()
    ctl("pn532.fault", faults=["air_crc"])
    e = raises(PN532PhoneError, p.exchange, bytes.fromhex("00b0000000"))
    assert e.status == 0x02 and not e.too_long
    assert bytes(p.exchange(bytes.fromhex("00b0000000"))) == bytes.fromhex("12349000")


# --- the faster wire: SetSerialBaudRate (UM0701-02 §7.2.13) -----------------------------

def fast(**kw):
    p = fresh(**kw)
    p.fast_baud = 460800
    return p


def test_set_serial_baud_rate_exact_frames():
    p = fresh()
    p.begin()
    wire()
    p.set_serial_baud(460800)
    # D4 10 06 (code 6 = 460.8 kbaud); after the chip's ACK and answer D5 11 (at 115200)
    # the host ACKs, and only then both ends run at 460800
    w = wire()
    assert w == bytes.fromhex("0000ff03fdd410061600") + ACK, w
    assert ctl("pn532.state")["baud"] == 460800 and p.link.baud == 460800
    assert p.firmware_version()[0] == 0x32  # both ends at the new rate
    raises(ValueError, p.set_serial_baud, 500000)


def _switches():
    return [c for c, _ in ctl("pn532.state")["commands"]].count(0x10)


def test_begin_switches_to_the_fast_rate():
    p = fast()
    n = _switches()
    assert p.begin()[0] == 0x32
    assert ctl("pn532.state")["baud"] == 460800 and p.link.baud == 460800
    assert _switches() == n + 1


def test_pn532_reset_falls_back_to_115200_and_switches_again():
    p = fast()
    p.begin()
    # a glitch: the chip restarts at 115200 and asleep; the driver is still at 460800
    ctl("pn532.fault", power_on=True)
    assert ctl("pn532.state")["baud"] == 115200
    raises(PN532Timeout, p.firmware_version)
    assert p.begin()[0] == 0x32  # what the tap loop's recovery calls
    assert ctl("pn532.state")["baud"] == 460800 and p.link.baud == 460800


def test_our_reset_with_the_chip_still_at_the_fast_rate():
    # the ESP32 rebooted (its UART back at 115200) while the PN532 kept power at 460800
    p = fast()
    ctl("pn532.state", baud=460800)
    n = _switches()
    assert p.begin()[0] == 0x32 and p.link.baud == 460800
    assert _switches() == n  # nothing to switch: it already ran at the fast rate
