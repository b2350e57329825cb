# SSD1306 driver and the rider-message layout against the virtual OLED: exact command
# bytes, the image, and the text read back off the pixels by the device host.
# mp-path: sim/vboard  (the virtual machine module)
# mp-devhost: hsu
import json

import machine

from drivers import layout
from drivers.ssd1306 import INIT, SSD1306, SSD1306Error


def ctl(cmd, **kw):
    kw["cmd"] = cmd
    r = json.loads(machine.sim_control(json.dumps(kw)))
    assert "error" not in r, r
    return r


def oled_writes():
    return [bytes.fromhex(d) for k, a, d in ctl("i2c.log", addr=0x3C, clear=True)["log"]
            if k == "w"]


def fresh():
    ctl("device", part="ssd1306", present=True)
    ctl("i2c.log", clear=True)
    return SSD1306(machine.I2C(0), 0x3C)


def test_init_sequence_exact_bytes():
    d = fresh()
    d.init_display()
    w = oled_writes()
    # datasheet power-up: display off, horizontal addressing, ..., charge pump on, on
    assert w[:len(INIT)] == [bytes((0x80, c)) for c in INIT]
    assert INIT[0] == 0xAE and INIT[1:3] == b"\x20\x00" and INIT[-3:] == b"\x8d\x14\xaf"
    # show(): column window 0..127, pages 0..7, then 1024 bytes of image after 0x40
    assert w[len(INIT)] == bytes((0x00, 0x21, 0, 127, 0x22, 0, 7))
    assert w[len(INIT) + 1] == b"\x40" + bytes(1024)
    assert ctl("screen")["on"]


def test_pixels_land_where_drawn():
    d = fresh()
    d.init_display()
    d.fill(0)
    d.pixel(0, 0, 1)
    d.pixel(127, 63, 1)
    d.show()
    art = ctl("screen")["art"].split("\n")
    assert art[0][0] == "\u2580"  # top pixel of the first two rows
    assert art[31][127] == "\u2584"  # bottom pixel of the last two rows


def test_rider_message_reads_back():
    d = fresh()
    d.init_display()
    layout.message(d, "BERHASIL", "Rp 3.500", "paid, thank you")
    d.show()
    assert ctl("screen")["text"] == "BERHASIL\nRp 3.500\npaid, thank you"


def test_layout_scales_and_clips():
    assert layout.fit_scale("Rp 1.000", largest=3) == 2  # 8 chars x 24 px > 128
    assert layout.fit_scale("OK", largest=3) == 3
    assert layout.fit_scale("X" * 40) == 1
    assert layout.clip("SUDAH BAYAR", 2) == "SUDAH BA"
    assert layout.clip("caf\u00e9", 1) == "caf?"
    d = fresh()
    d.init_display()
    layout.message(d, "SUDAH BAYAR", "OK", "already paid")
    d.show()
    # the status line falls back to the small font to fit; the big text is 3x
    assert ctl("screen")["text"] == "SUDAH BAYAR\nOK\nalready paid"


def test_idle_lines():
    d = fresh()
    d.init_display()
    layout.lines(d, ["TEMPELKAN HP", "ATAU SCAN QR", "K1 B-017"])
    d.show()
    assert ctl("screen")["text"] == "TEMPELKAN HP\nATAU SCAN QR\nK1 B-017"


def test_unplugged_display_raises_typed_error():
    d = fresh()
    ctl("device", part="ssd1306", present=False)
    try:
        d.show()
        raise AssertionError("show() on a missing display")
    except SSD1306Error:
        pass
    ctl("device", part="ssd1306", present=True)


def test_reinit_keeps_what_was_drawn():
    d = fresh()
    layout.lines(d, ["MEMULAI"])
    d.init_display()
    assert ctl("screen")["text"] == "MEMULAI"
