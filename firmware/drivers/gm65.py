# GM65/GM805-class QR scanner module on a UART (Grow serial protocol).
#
# Configuration with command frames  7E 00 | type | len | addr(2) | data | CRC(2)
# (type 07 read zone, 08 write zone, 09 save to EEPROM; CRC-16/XMODEM over type..data);
# the module answers 02 00 | 00 | len | data | CRC. Scans arrive as text lines ended by
# the configured tail (CR). A line is bounded (the token limit), noise bytes make a line
# unusable, and a partial line that stalls is dropped: a scan's bytes come back to back.
import time

from micropython import const

# Frames, CRC and zone 0x0000 as in the GM65 manual §8 (its examples are in the tests).
_ZONE_MODE = const(0x0000)  # bits 1-0: 00 manual, 01 command, 10 continuous, 11 sensor
# The tail zone is from the Grow family's zone table as we read it; not checked against a
# module here (the virtual GM65 implements the same reading): verify on real hardware.
_ZONE_TAIL = const(0x0060)  # bit 7 add tail, bits 6-5: 00 CR, 01 CRLF, 10 TAB
# The serial rate: a 16-bit little-endian divisor (~3,000,000 / baud) in zones
# 0x002A-0x002B, per the GM65/GM805 manuals' common serial commands (docs/drivers.md).
_ZONE_BAUD = const(0x002A)
SHIPPED_BAUD = const(9600)
_DIVISORS = ((9600, 0x0139), (19200, 0x009C), (38400, 0x004E), (57600, 0x0034),
             (115200, 0x001A))
_MODE_CONTINUOUS = const(2)
MODE_SENSING = const(3)
TAIL_CR = const(0x80)

# A gap this long inside a line means the rest is not coming. Longer than the burst
# interval of the ESP32's UART driver at 9600 baud (120-byte FIFO threshold: 125 ms;
# ports/esp32/machine_uart.c), so a line survives a UART left at its default threshold.
_STALL_MS = const(200)


class GM65Error(Exception):
    """The QR scanner failed (the driver's exception family)."""


class GM65Timeout(GM65Error):
    """No reply to a configuration command in time (silent or wrong baud rate)."""


class GM65ReplyError(GM65Error):
    """A reply came but was wrong: CRC, failure type, length."""


class GM65LineError(GM65Error):
    """A scanned line was unusable: over the length bound or with non-text bytes."""

    def __init__(self, msg, why):
        super().__init__(msg)
        self.why = why  # "too long" | "noise"


def crc16(buf, n):
    c = 0
    for i in range(n):
        c ^= buf[i] << 8
        for _ in range(8):
            c = ((c << 1) ^ 0x1021) & 0xFFFF if c & 0x8000 else (c << 1) & 0xFFFF
    return c


class GM65:
    def __init__(self, uart, max_line=773, reply_timeout_ms=300, baud=None, fast_baud=None):
        self.uart = uart
        self.baud = baud            # the rate `uart` was made at (None: not managed here)
        self.fast_baud = fast_baud  # switch the module to this rate in configure()
        self.found_baud = None      # the rate the module was found at by connect()
        self.reply_timeout_ms = reply_timeout_ms
        self._line = bytearray(max_line)
        self._n = 0
        self._bad = None  # why the current line is unusable, once known
        self._last = time.ticks_ms()
        self._cmd = bytearray(16)
        self._rep = bytearray(8 + 16)
        self._chunk = bytearray(64)
        self._cpos = 0
        self._clen = 0
        self.dropped = 0  # partial lines dropped after a stall

    # --- configuration -------------------------------------------------------------
    def _frame(self, typ, addr, data):
        c = self._cmd
        n = len(data)
        c[0], c[1], c[2], c[3], c[4], c[5] = 0x7E, 0x00, typ, n, addr >> 8, addr & 0xFF
        c[6:6 + n] = data
        k = crc16(memoryview(c)[2:], 4 + n)
        c[6 + n] = k >> 8
        c[7 + n] = k & 0xFF
        return memoryview(c)[:8 + n]

    def _read(self, mv, n, deadline):
        got = 0
        while got < n:
            k = self.uart.readinto(mv[got:n])
            if k:
                got += k
            elif time.ticks_diff(deadline, time.ticks_ms()) <= 0:
                return got
        return got

    def command(self, typ, addr, data):
        """Send one command frame; return the reply's data (a view, valid until the
        next command)."""
        if len(data) > 8:
            raise GM65Error("command data too long")
        u = self.uart
        for _ in range(16):  # stale bytes (a scan, noise) are not our reply; bounded
            n = u.any()
            if not n:
                break
            u.read(n)
        self._reset_line()
        self._cpos = self._clen = 0
        u.write(self._frame(typ, addr, data))
        deadline = time.ticks_add(time.ticks_ms(), self.reply_timeout_ms)
        r = self._rep
        mv = memoryview(r)
        prev = -1
        for _ in range(1024):  # sync on 02 00, past a scan arriving meanwhile
            if self._read(mv, 1, deadline) < 1:
                raise GM65Timeout("no reply from the QR scanner")
            if prev == 0x02 and r[0] == 0x00:
                break
            prev = r[0]
        else:
            raise GM65ReplyError("no reply header in the noise")
        r[0], r[1] = 0x02, 0x00
        if self._read(mv[2:], 2, deadline) < 2:
            raise GM65ReplyError("truncated reply")
        n = r[3]
        if n > len(r) - 6:
            raise GM65ReplyError("reply length %d" % n)
        if self._read(mv[4:], n + 2, deadline) < n + 2:
            raise GM65ReplyError("truncated reply")
        k = crc16(mv[2:], 2 + n)
        if r[4 + n] != k >> 8 or r[5 + n] != k & 0xFF:
            raise GM65ReplyError("reply CRC")
        if r[2] != 0x00:
            raise GM65ReplyError("command failed (type %02x)" % r[2])
        return mv[4:4 + n]

    def read_zone(self, addr, count=1):
        return bytes(self.command(0x07, addr, bytes((count,))))

    def write_zone(self, addr, data):
        r = self.command(0x08, addr, data)
        if len(r) != 1 or r[0] != 0:
            raise GM65ReplyError("write not confirmed")

    def save(self):
        self.command(0x09, 0x0000, b"\x00")

    def _set_uart(self, rate):
        self.uart.init(baudrate=rate)  # the port keeps the other settings (machine_uart.c)
        self.baud = rate

    def connect(self):
        """Find the module's rate - the UART's, else the other of fast_baud and the
        shipped 9600 - and switch it to fast_baud, saved so it survives a power cycle.
        Returns the rate the module was found at (9600: a scanner still as shipped).
        GM65Timeout if it answers at neither rate."""
        fast = self.fast_baud
        try:
            self.read_zone(_ZONE_BAUD, 2)
        except GM65Timeout:
            self._set_uart(SHIPPED_BAUD if self.baud != SHIPPED_BAUD else fast)
            self.read_zone(_ZONE_BAUD, 2)
        self.found_baud = self.baud
        if self.baud != fast:
            d = 0
            for rate, div in _DIVISORS:
                if rate == fast:
                    d = div
            if not d:
                raise GM65Error("no divisor for %d baud" % fast)
            want = bytes((d & 0xFF, d >> 8))
            self.write_zone(_ZONE_BAUD, want)  # answered at the old rate, then it switches
            self._set_uart(fast)
            if self.read_zone(_ZONE_BAUD, 2) != want:
                raise GM65ReplyError("baud rate zone not taken")
            self.save()  # persist: the module keeps 115200 over a power cycle
        return self.found_baud

    def configure(self, mode=MODE_SENSING, tail=TAIL_CR):
        """The module's rate first (connect(), when fast_baud is set), then read mode
        (keeping the other bits of zone 0) and CR tail; idempotent."""
        if self.fast_baud:
            self.connect()
        z = self.read_zone(_ZONE_MODE)[0]
        want = (z & 0xFC) | mode
        if want != z:
            self.write_zone(_ZONE_MODE, bytes((want,)))
        if self.read_zone(_ZONE_TAIL)[0] != tail:
            self.write_zone(_ZONE_TAIL, bytes((tail,)))

    # --- scans -----------------------------------------------------------------------
    def _reset_line(self):
        self._n = 0
        self._bad = None

    def poll(self):
        """Non-blocking: a memoryview of one complete scanned line (without the tail;
        valid until the next poll), or None. GM65LineError for an unusable line."""
        u = self.uart
        for _ in range(16):  # bounded: at most 16 chunks per call
            if self._cpos >= self._clen:
                now = time.ticks_ms()
                n = u.any()
                if not n:
                    if self._n and time.ticks_diff(now, self._last) > _STALL_MS:
                        self.dropped += 1  # the rest of that line is not coming
                        self._reset_line()
                    return None
                self._clen = u.readinto(self._chunk, min(n, len(self._chunk))) or 0
                self._cpos = 0
                self._last = now
            c = self._chunk
            while self._cpos < self._clen:
                b = c[self._cpos]
                self._cpos += 1
                line = self._take(b)
                if line is not None:
                    return line
        return None

    def _take(self, b):
        if b == 0x0D:
            n, bad = self._n, self._bad
            self._reset_line()
            if bad:
                raise GM65LineError("scan unusable: " + bad, bad)
            if n == 0:
                return None
            return memoryview(self._line)[:n]
        if b == 0x0A and self._n == 0:
            return None  # LF of a CRLF tail
        if self._bad:
            return None
        if b < 0x20 or b > 0x7E:
            self._bad = "noise"
            return None
        if self._n >= len(self._line):
            self._bad = "too long"
            return None
        self._line[self._n] = b
        self._n += 1
        return None
