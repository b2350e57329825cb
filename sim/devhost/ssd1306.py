"""A virtual SSD1306 128×64 OLED (Solomon Systech datasheet rev 1.1) on I2C 0x3C.

The screen is rebuilt from the I2C traffic: a control byte 0x00 starts a command
stream, 0x80 one command, 0x40 a data stream, 0xC0 one data byte. Commands used by
drivers are interpreted (display on/off, addressing mode, column/page windows, page
start and column in page mode, invert, contrast); others are consumed with their
argument counts. GDDRAM is 8 pages × 128 columns, one byte = 8 pixels vertically,
bit 0 at the top.
"""

import threading

W, H = 128, 64
# argument counts of multi-byte commands
_ARGS = {0x20: 1, 0x21: 2, 0x22: 2, 0x81: 1, 0xA8: 1, 0xD3: 1, 0xD5: 1, 0xD9: 1, 0xDA: 1,
         0xDB: 1, 0x8D: 1, 0x26: 6, 0x27: 6, 0x29: 5, 0x2A: 5, 0xA3: 2}


class VirtualSSD1306:
    def __init__(self):
        self.ram = bytearray(W * H // 8)
        self.on = False
        self.inverted = False
        self.contrast = 0x7F
        self.mode = 2  # page addressing after reset
        self.col0, self.col1, self.page0, self.page1 = 0, W - 1, 0, 7
        self.col, self.page = 0, 0
        self._cmd = []  # command being collected with its arguments
        self._lock = threading.Lock()
        self.frames = 0  # data bytes streams received (a "show()" each)
        self.silent = False

    def i2c_write(self, data, stop=True):
        with self._lock:
            i = 0
            while i < len(data):
                ctrl = data[i]
                i += 1
                if ctrl & 0x40:  # data
                    if ctrl & 0x80:
                        if i < len(data):
                            self._data(data[i:i + 1])
                        i += 1
                        continue
                    self._data(data[i:])
                    self.frames += 1
                    return
                if ctrl & 0x80:  # one command byte, then another control byte
                    if i < len(data):
                        self._command_byte(data[i])
                    i += 1
                    continue
                for b in data[i:]:
                    self._command_byte(b)
                return

    def i2c_read(self, n):
        return bytes(n)  # status reads are not used by drivers; the chip answers 0

    def _command_byte(self, b):
        self._cmd.append(b)
        need = _ARGS.get(self._cmd[0], 0)
        if len(self._cmd) <= need:
            return
        c = self._cmd
        self._cmd = []
        op = c[0]
        if op == 0xAE:
            self.on = False
        elif op == 0xAF:
            self.on = True
        elif op == 0xA6:
            self.inverted = False
        elif op == 0xA7:
            self.inverted = True
        elif op == 0x81:
            self.contrast = c[1]
        elif op == 0x20:
            self.mode = c[1] & 3
        elif op == 0x21:
            self.col0, self.col1 = c[1] & 0x7F, c[2] & 0x7F
            self.col = self.col0
        elif op == 0x22:
            self.page0, self.page1 = c[1] & 7, c[2] & 7
            self.page = self.page0
        elif 0xB0 <= op <= 0xB7:
            self.page = op & 7
        elif op <= 0x0F:
            self.col = (self.col & 0xF0) | op
        elif 0x10 <= op <= 0x1F:
            # the column address is 7 bits: 0x18..0x1F wrap like the chip's counter
            self.col = ((self.col & 0x0F) | ((op & 0x0F) << 4)) & 0x7F

    def _data(self, data):
        for b in data:
            self.ram[self.page * W + self.col] = b
            if self.mode == 0:  # horizontal: column, then page, inside the window
                if self.col >= self.col1:
                    self.col = self.col0
                    self.page = self.page0 if self.page >= self.page1 else self.page + 1
                else:
                    self.col += 1
            elif self.mode == 1:  # vertical
                if self.page >= self.page1:
                    self.page = self.page0
                    self.col = self.col0 if self.col >= self.col1 else self.col + 1
                else:
                    self.page += 1
            else:  # page mode: column only, no wrap to the next page
                self.col = min(self.col + 1, W - 1)

    # --- what the rider sees -------------------------------------------------------
    def pixel(self, x, y):
        v = (self.ram[(y >> 3) * W + x] >> (y & 7)) & 1
        return v ^ 1 if self.inverted else v

    def pixels(self):
        """64 rows of 128 ints (1 = lit); all dark while the display is off."""
        with self._lock:
            if not self.on:
                return [[0] * W for _ in range(H)]
            return [[self.pixel(x, y) for x in range(W)] for y in range(H)]
