# SSD1306 128x64 OLED on I2C (Solomon Systech datasheet rev 1.1), as micropython-lib's
# driver does it: a framebuf.FrameBuffer over one preallocated GDDRAM image (MONO_VLSB,
# 8 pages x 128 columns), commands with control byte 0x80, the image with 0x40 in one
# horizontal-addressing burst.
import framebuf
from micropython import const

_SET_CONTRAST = const(0x81)
_SET_ENTIRE_ON = const(0xA4)
_SET_NORM_INV = const(0xA6)
_SET_DISP = const(0xAE)
_SET_MEM_ADDR = const(0x20)
_SET_COL_ADDR = const(0x21)
_SET_PAGE_ADDR = const(0x22)
_SET_DISP_START_LINE = const(0x40)
_SET_SEG_REMAP = const(0xA0)
_SET_MUX_RATIO = const(0xA8)
_SET_COM_OUT_DIR = const(0xC0)
_SET_DISP_OFFSET = const(0xD3)
_SET_COM_PIN_CFG = const(0xDA)
_SET_DISP_CLK_DIV = const(0xD5)
_SET_PRECHARGE = const(0xD9)
_SET_VCOM_DESEL = const(0xDB)
_SET_CHARGE_PUMP = const(0x8D)

# power-up sequence (datasheet application note, internal charge pump)
INIT = bytes((
    _SET_DISP,  # off
    _SET_MEM_ADDR, 0x00,  # horizontal addressing
    _SET_DISP_START_LINE, _SET_SEG_REMAP | 0x01, _SET_MUX_RATIO, 63,
    _SET_COM_OUT_DIR | 0x08, _SET_DISP_OFFSET, 0x00, _SET_COM_PIN_CFG, 0x12,
    _SET_DISP_CLK_DIV, 0x80, _SET_PRECHARGE, 0xF1, _SET_VCOM_DESEL, 0x30,
    _SET_CONTRAST, 0xFF, _SET_ENTIRE_ON, _SET_NORM_INV, _SET_CHARGE_PUMP, 0x14,
    _SET_DISP | 0x01,  # on
))


class SSD1306Error(Exception):
    """The display did not take a command or the image (the driver's exception family)."""


class SSD1306(framebuf.FrameBuffer):
    def __init__(self, i2c, addr=0x3C, width=128, height=64):
        self.i2c = i2c
        self.addr = addr
        self.width = width
        self.height = height
        self.pages = height // 8
        self.buffer = bytearray(self.pages * width)
        super().__init__(self.buffer, width, height, framebuf.MONO_VLSB)
        self._c = bytearray(2)
        self._c[0] = 0x80  # Co=1, D/C=0: one command byte follows
        self._win = bytes((0x00, _SET_COL_ADDR, 0, width - 1, _SET_PAGE_ADDR, 0,
                           self.pages - 1))
        self._vec = [b"\x40", self.buffer]

    def _send(self, fn, *args):
        try:
            fn(self.addr, *args)
        except OSError as e:
            raise SSD1306Error("display: %s" % e)

    def write_cmd(self, cmd):
        self._c[1] = cmd
        self._send(self.i2c.writeto, self._c)

    def init_display(self):
        """Power-up sequence, then the current image (blank for a new driver). Unlike
        micropython-lib it does not clear what was already drawn, so a boot message
        drawn first survives a re-init."""
        for c in INIT:
            self.write_cmd(c)
        self.show()

    def poweroff(self):
        self.write_cmd(_SET_DISP)

    def poweron(self):
        self.write_cmd(_SET_DISP | 0x01)

    def contrast(self, v):
        self.write_cmd(_SET_CONTRAST)
        self.write_cmd(v)

    def invert(self, on):
        self.write_cmd(_SET_NORM_INV | (1 if on else 0))

    def show(self):
        # column/page window in one command stream (control 0x00), then the image
        self._send(self.i2c.writeto, self._win)
        self._send(self.i2c.writevto, self._vec)
