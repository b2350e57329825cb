# PN532 driver over I2C (the board's second wiring) against the virtual PN532 at 0x24.
# mp-path: sim/vboard  (the virtual machine module)
# mp-devhost: i2c      (PN532 on the I2C bus instead of UART2)
import json

import machine

from drivers.pn532 import PN532, PN532FrameError, PN532TargetGone, PN532Timeout
from drivers.pn532_i2c import I2CLink


def ctl(cmd, **kw):
    kw["cmd"] = cmd
    r = json.loads(machine.sim_control(json.dumps(kw)))
    assert "error" not in r, r
    return r


def host_frame(*data):
    d = bytes((0xD4,) + data)
    n = len(d)
    return bytes((0x00, 0x00, 0xFF, n, (0x100 - n) & 0xFF)) + d + \
        bytes(((0x100 - sum(d)) & 0xFF, 0x00))


def fresh(card=None, **kw):
    ctl("card.remove")
    ctl("pn532.fault", power_on=True, silent=False)
    ctl("i2c.log", clear=True)
    if card:
        ctl("card.present", **card)
    return PN532(I2CLink(machine.I2C(0), 0x24), **kw)


def writes():
    return [bytes.fromhex(d) for k, a, d in ctl("i2c.log", addr=0x24, clear=True)["log"]
            if k == "w"]


def test_begin_and_tap_over_i2c():
    p = fresh({"echo": True})
    assert p.begin() == (0x32, 1, 6, 7)
    # no HSU wake-up on I2C: the address match wakes the chip; commands as on HSU
    assert writes() == [host_frame(0x14, 0x01, 0x00, 0x00), host_frame(0x02),
                        host_frame(0x32, 0x05, 0xFF, 0x01, 0x01)]
    t = p.list_target()
    assert t is not None and t.iso_dep()
    assert bytes(p.exchange(b"\x00\xa4\x04\x00")) == b"\x00\xa4\x04\x00\x90\x00"


def test_i2c_faults():
    p = fresh({"echo": True, "leave_after": 0})
    p.begin()
    assert p.list_target() is not None
    try:
        p.exchange(b"\x00")
        raise AssertionError("exchange with a phone that left")
    except PN532TargetGone:
        pass
    ctl("pn532.fault", faults=["bad_dcs", "bad_dcs", "bad_dcs"])
    try:
        p.firmware_version()
        raise AssertionError("bad checksums accepted")
    except PN532FrameError:
        pass


def test_i2c_chip_unplugged():
    p = fresh(ack_timeout_ms=20)
    ctl("device", part="pn532", present=False)
    try:
        p.begin()
        raise AssertionError("begin on a missing chip")
    except PN532Timeout as e:
        assert "I2C" in str(e)
    ctl("device", part="pn532", present=True)


def test_board_builds_the_i2c_wiring():
    import board
    ctl("pn532.fault", power_on=True, silent=False)
    b = board.build(nfc_bus="i2c")
    assert b.nfc.begin() == (0x32, 1, 6, 7)
