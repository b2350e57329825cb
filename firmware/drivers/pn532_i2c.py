# PN532 I2C transport (the board's second wiring), kept apart so the HSU wiring does not
# carry its code on the heap. UM0701-02 §6.2.4: every read starts with a ready byte.
import time

from drivers.pn532_link import PN532Timeout
from micropython import const

_MAX_FRAME_DATA = const(265)  # TFI + command + 262 data + 1, as in pn532_link

class I2CLink:
    """I2C at address 0x24: the chip prefixes every read with a ready byte (bit 0); a
    frame is read in one transaction (UM §6.2.4). OSError from the bus (no ACK of the
    address) becomes PN532Timeout."""

    def __init__(self, i2c, addr=0x24, poll_ms=2):
        self.i2c = i2c
        self.addr = addr
        self.poll_ms = poll_ms
        self._pkt = bytearray(1 + 8 + _MAX_FRAME_DATA + 2)
        self._st = bytearray(1)
        self._pos = 0
        self._len = 0
        self.got = 0

    def wake(self):
        self._pos = self._len = 0

    def send(self, frame):
        try:
            self.i2c.writeto(self.addr, frame)
        except OSError as e:
            raise PN532Timeout("I2C write: %s" % e)

    def discard(self):
        self._pos = self._len = 0

    def drain(self):
        self._pos = self._len = 0

    def new_frame(self):
        self._pos = self._len = 0  # padding after a frame is not data

    def _fetch(self, deadline):
        while True:
            try:
                self.i2c.readfrom_into(self.addr, self._st)
                if self._st[0] & 1:
                    self.i2c.readfrom_into(self.addr, self._pkt)
                    if self._pkt[0] & 1:
                        self._pos, self._len = 1, len(self._pkt)
                        return True
            except OSError as e:
                raise PN532Timeout("I2C read: %s" % e)
            if time.ticks_diff(deadline, time.ticks_ms()) <= 0:
                return False
            time.sleep_ms(self.poll_ms)

    def readexact(self, mv, n, deadline):
        got = 0
        while got < n:
            if self._pos >= self._len and not self._fetch(deadline):
                self.got = got
                return False
            k = min(n - got, self._len - self._pos)
            mv[got:got + k] = memoryview(self._pkt)[self._pos:self._pos + k]
            self._pos += k
            got += k
        self.got = got
        return True
