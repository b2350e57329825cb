# PN532 HSU transport and frame reader: bytes in and out over the UART (I2C is in
# pn532_i2c.py, imported only for that wiring), and the frame grammar of UM0701-02 §6.2.1 — normal, extended, ACK, NACK, error frames — read
# with resynchronisation after garbage and a deadline on every wait.
import time

from micropython import const

ACK_FRAME = b"\x00\x00\xff\x00\xff\x00"
NACK_FRAME = b"\x00\x00\xff\xff\x00\x00"
WAKE = b"\x55\x55" + bytes(14)  # HSU wake-up: 0x55 then enough zeros (UM §7.2.11)

_MAX_FRAME_DATA = const(265)  # TFI + command + 262 data + 1
_MAX_SKIP = const(600)  # garbage bytes tolerated before a start code


class PN532Error(Exception):
    """Anything that went wrong talking to the PN532 (the driver's exception family)."""


class PN532Timeout(PN532Error):
    """The chip said nothing in time (silent, asleep, unplugged). `acked` is True when it
    had acknowledged the command and only its answer is missing."""

    def __init__(self, msg, acked=False):
        super().__init__(msg)
        self.acked = acked


class PN532FrameError(PN532Error):
    """A frame came but was wrong: checksum, truncated, unexpected."""


class UartLink:
    """HSU: the UART is passed in, configured 115200 8N1 with a short read timeout
    (board.py: timeout=10, timeout_char=3) so waits are bounded by our deadlines."""

    def __init__(self, uart, baud=115200):
        self.uart = uart
        self.baud = baud  # the rate `uart` runs at (the PN532's is 115200 after power-up)

    def set_baud(self, rate):
        """Switch the host side: wait until the last byte left, then re-init the UART
        (the port keeps timeouts and buffers, machine_uart.c)."""
        self.uart.flush()
        self.uart.init(baudrate=rate)
        self.baud = rate

    def wake(self):
        self.discard()
        self.uart.write(WAKE)

    def send(self, frame):
        self.uart.write(frame)

    def discard(self):
        u = self.uart
        n = u.any()
        k = 0
        while n and k < 8:
            u.read(n)
            n = u.any()
            k += 1

    def new_frame(self):
        pass

    def drain(self):
        """Drop the rest of a bad frame: read until the line is quiet for one UART
        timeout (bounded)."""
        u = self.uart
        for _ in range(16):
            if not u.read(64):
                return

    def readexact(self, mv, n, deadline):
        """Fill mv[0:n]; False if the deadline passed first (mv holds what came)."""
        got = 0
        u = self.uart
        whole = n == len(mv)
        while got < n:
            # no slice (a heap object) when the caller's view is exactly what is wanted
            k = u.readinto(mv if (whole and not got) else mv[got:n])
            if k:
                got += k
            elif time.ticks_diff(deadline, time.ticks_ms()) <= 0:
                self.got = got
                return False
        self.got = got
        return True


class FrameReader:
    ACK = 1
    NACK = 2
    DATA = 3
    ERROR = 4

    def __init__(self, link):
        self.link = link
        self.buf = bytearray(_MAX_FRAME_DATA + 2)  # TFI..data, DCS, postamble
        self.mv = memoryview(self.buf)
        self._h = bytearray(3)
        self._hmv = memoryview(self._h)
        # exact-size views, made once: reading into them allocates nothing
        self._h1 = self._hmv[:1]
        self._h2 = self._hmv[:2]
        self.n = 0

    def data(self):
        """TFI + data of the last DATA frame (a view into the reader's buffer)."""
        return self.mv[:self.n]

    def _sync(self, deadline):
        # skip preamble zeros and garbage up to the start code 00 FF
        prev = -1
        h = self._h1
        for _ in range(_MAX_SKIP):
            if not self.link.readexact(h, 1, deadline):
                return False
            c = self._h[0]
            if prev == 0 and c == 0xFF:
                return True
            prev = c
        raise PN532FrameError("no start code in %d bytes" % _MAX_SKIP)

    def read(self, timeout_ms):
        """Read one frame; its kind. PN532Timeout if nothing came, PN532FrameError if a
        frame started but was bad or cut short."""
        deadline = time.ticks_add(time.ticks_ms(), timeout_ms)
        link = self.link
        link.new_frame()
        if not self._sync(deadline):
            raise PN532Timeout("no frame in %d ms" % timeout_ms)
        h = self._h
        if not link.readexact(self._h2, 2, deadline):
            raise PN532FrameError("truncated frame header")
        ln, lcs = h[0], h[1]
        if ln == 0 and lcs == 0xFF:
            link.readexact(self._h1, 1, deadline)  # postamble
            return self.ACK
        if ln == 0xFF and lcs == 0:
            link.readexact(self._h1, 1, deadline)
            return self.NACK
        if ln == 0xFF and lcs == 0xFF:  # extended frame
            if not link.readexact(self._hmv, 3, deadline):
                raise PN532FrameError("truncated extended header")
            if (h[0] + h[1] + h[2]) & 0xFF:
                raise PN532FrameError("extended LCS")
            ln = (h[0] << 8) | h[1]
        elif (ln + lcs) & 0xFF:
            raise PN532FrameError("LCS")
        if ln < 1 or ln > _MAX_FRAME_DATA:
            raise PN532FrameError("frame length %d" % ln)
        buf = self.buf
        # data + DCS; the postamble is read best-effort (some modules omit it)
        if not link.readexact(self.mv, ln + 1, deadline):
            raise PN532FrameError("truncated frame (%d of %d bytes)" % (link.got, ln + 1))
        s = 0
        for i in range(ln + 1):
            s += buf[i]
        if s & 0xFF:
            raise PN532FrameError("DCS")
        link.readexact(self._h1, 1, time.ticks_ms())
        self.n = ln
        if ln == 1 and buf[0] == 0x7F:
            return self.ERROR
        return self.DATA
