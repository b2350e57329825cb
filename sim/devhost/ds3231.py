"""A virtual DS3231 (Maxim datasheet 19-5170): the register map on I2C address 0x68.

Registers 00h–06h hold the time in BCD (seconds, minutes, hours 24 h, day 1–7, date,
month with the century bit 7, year 00–99); 0Eh control; 0Fh status with OSF (bit 7),
set when the oscillator stopped (first power-up, battery gone) and cleared only by
writing 0 to it. The register pointer auto-increments and wraps after 12h.
A fresh chip reads 2000-01-01 00:00:00 with OSF set: the firmware must treat that time
as unset.
"""

import calendar
import threading
import time

NREGS = 0x13


def bcd(v):
    return ((v // 10) << 4) | (v % 10)


def unbcd(b):
    return (b >> 4) * 10 + (b & 0x0F)


class VirtualDS3231:
    def __init__(self):
        self.regs = bytearray(NREGS)
        self.regs[0x0E] = 0x1C  # power-on default of the control register
        self.regs[0x0F] = 0x80  # OSF: the oscillator has never run with valid time
        self._base = 946684800  # 2000-01-01T00:00:00Z, the chip's reset value
        self._mono = time.monotonic()
        self.running = True
        self.garbage = False  # registers hold an impossible time (written so)
        self.ptr = 0
        self.silent = False
        self._lock = threading.Lock()
        self.writes = 0

    # --- control API ---------------------------------------------------------------
    def now(self):
        """Unix seconds the chip currently holds."""
        if not self.running:
            return self._base
        return self._base + int(time.monotonic() - self._mono)

    def set_time(self, unix_seconds, clear_osf=False):
        with self._lock:
            self.garbage = False
            self._base = int(unix_seconds)
            self._mono = time.monotonic()
            if clear_osf:
                self.regs[0x0F] &= 0x7F

    @property
    def osf(self):
        return bool(self.regs[0x0F] & 0x80)

    def stop_oscillator(self):
        """Battery removed while the bus was off: time stops and OSF is set."""
        with self._lock:
            self._base = self.now()
            self.running = False
            self.regs[0x0F] |= 0x80

    def start_oscillator(self):
        with self._lock:
            self._mono = time.monotonic()
            self.running = True

    # --- registers -----------------------------------------------------------------
    def _render(self):
        if self.garbage:
            return  # "illogical entries result in undefined operation": keep them
        t = time.gmtime(self.now())
        yy = t.tm_year - 2000
        century = 0
        if yy >= 100:
            yy -= 100
            century = 0x80
        self.regs[0:7] = bytes((bcd(t.tm_sec), bcd(t.tm_min), bcd(t.tm_hour), t.tm_wday + 1,
                                bcd(t.tm_mday), bcd(t.tm_mon) | century, bcd(yy)))

    def _parse(self):
        """Unix time of registers 00h-06h, or None if they hold no valid time."""
        r = self.regs
        masks = (0x7F, 0x7F, 0x3F, 0x07, 0x3F, 0x1F, 0xFF)
        if any((r[i] & m & 0x0F) > 9 or ((r[i] & m) >> 4) > 9 for i, m in enumerate(masks)):
            return None
        year = 2000 + unbcd(r[6]) + (100 if r[5] & 0x80 else 0)
        if r[2] & 0x40:  # 12-hour mode
            hour = unbcd(r[2] & 0x1F) % 12 + (12 if r[2] & 0x20 else 0)
        else:
            hour = unbcd(r[2] & 0x3F)
        mon, day = unbcd(r[5] & 0x1F), unbcd(r[4] & 0x3F)
        mi, sec = unbcd(r[1] & 0x7F), unbcd(r[0] & 0x7F)
        if not (1 <= mon <= 12 and 1 <= day <= calendar.monthrange(year, mon)[1]
                and hour < 24 and mi < 60 and sec < 60):
            return None
        return calendar.timegm((year, mon, day, hour, mi, sec, 0, 0, 0))

    def i2c_write(self, data, stop=True):
        with self._lock:
            if not data:
                return
            self.ptr = data[0] % NREGS
            body = data[1:]
            if not body:
                return
            self.writes += 1
            self._render()
            touched_time = False
            for b in body:
                if self.ptr == 0x0F:
                    # OSF can only be cleared by the host, never set
                    b = (b & 0x7F) | (self.regs[0x0F] & b & 0x80)
                if self.ptr == 0x11 or self.ptr == 0x12:
                    b = self.regs[self.ptr]  # temperature registers are read-only
                self.regs[self.ptr] = b
                touched_time |= self.ptr <= 6
                self.ptr = (self.ptr + 1) % NREGS
            if touched_time:
                t = self._parse()
                self.garbage = t is None
                if t is not None:
                    self._base = t
                    self._mono = time.monotonic()

    def i2c_read(self, n):
        with self._lock:
            self._render()
            self.regs[0x11], self.regs[0x12] = 25, 0x40  # 25.25 °C
            out = bytearray()
            for _ in range(n):
                out.append(self.regs[self.ptr])
                self.ptr = (self.ptr + 1) % NREGS
            return bytes(out)
