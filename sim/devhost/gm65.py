"""A virtual GM65/GM805-class QR scanner module (Grow serial protocol) on a UART.

Configuration frames from the host:
    7E 00 | type | len | addr (2, big-endian) | data (len) | CRC (2)
type 07 = read `data[0]` zone bytes from addr, 08 = write data to zone addr..,
09 = save zones to EEPROM. CRC is CRC-16/XMODEM (poly 0x1021, init 0) over
type..data, and the literal bytes AB CD mean "no check". Replies:
    02 00 | 00 | len | data | CRC       (e.g. a write: 02 00 00 01 00 33 31)
A frame with a bad CRC gets no reply (the module ignores it).

Zones modelled: 0x0000 bits 1–0 read mode (00 manual: only its own trigger button,
01 command-triggered, 10 continuous, 11 sensing); 0x0060 bit 7 = append a tail to
each scan, bits 6–5 = tail type (00 CR, 01 CRLF, 10 TAB). The module starts in manual
mode without a tail, so a driver that does not configure it reads nothing.
Scans (`show(text)`) come out only in continuous or sensing mode (or after a command
trigger) as the text bytes plus the tail.

Baud rate: zone 0x002A–0x002B holds the serial rate as a 16-bit little-endian divisor
(≈ 3,000,000 / baud: 0x0139 = 9600 as shipped, 0x001A = 115200), as the GM65/GM805
manuals' "common serial commands" show (query 7E 00 07 01 00 2A 02 D8 0F, answer
02 00 00 02 39 01 .. for 9600; docs/drivers.md). A write to it is answered at the old
rate, then the module runs at the new one; `save` (type 09) keeps it over a power cycle
(`power_cycle()`), `power_on()` is the factory state. If the host's UART runs at another
rate, its commands are lost and scans arrive as garbage, as on a real wire.
"""

import threading

TAILS = {0: b"\r", 1: b"\r\n", 2: b"\t"}
ZONE_BAUD = 0x002A
# divisor in zone 0x002A (little-endian) -> baud rate
DIVISORS = {0x09C4: 1200, 0x0271: 4800, 0x0139: 9600, 0x00D0: 14400, 0x009C: 19200,
            0x004E: 38400, 0x0034: 57600, 0x001A: 115200}


def crc16(data):
    c = 0
    for b in data:
        c ^= b << 8
        for _ in range(8):
            c = ((c << 1) ^ 0x1021) & 0xFFFF if c & 0x8000 else (c << 1) & 0xFFFF
    return c


def reply(data=b"\x00"):
    body = bytes((0x00, len(data))) + bytes(data)
    c = crc16(body)
    return b"\x02\x00" + body + bytes((c >> 8, c & 0xFF))


class VirtualGM65:
    def __init__(self, baud=9600):
        self.uart = None
        self._lock = threading.Lock()
        self.power_on()
        if baud != 9600:
            self.set_baud(baud, save=True)

    def power_on(self):
        """Factory state (what a module fresh from the box holds)."""
        self.zones = bytearray(0x100)
        self.zones[0x0000] = 0xD4  # LED on, sound on, manual read mode
        self.zones[0x0060] = 0x00  # no tail
        self.zones[ZONE_BAUD:ZONE_BAUD + 2] = b"\x39\x01"  # 9600
        self.saved = bytes(self.zones)
        self.power_cycle()
        self.scans = []  # (text, delivered?)
        self.commands = []

    def power_cycle(self):
        """Power off and on: the zones come back from what was saved."""
        self.faults = []  # for tests: "bad_crc", "fail", "truncate" on the next replies
        self.zones = bytearray(self.saved)
        self._buf = bytearray()
        self.silent = False
        self.triggered = False
        self.baud = self._zone_baud()

    def _zone_baud(self):
        div = self.zones[ZONE_BAUD] | (self.zones[ZONE_BAUD + 1] << 8)
        return DIVISORS.get(div, 9600)

    def saved_baud(self):
        div = self.saved[ZONE_BAUD] | (self.saved[ZONE_BAUD + 1] << 8)
        return DIVISORS.get(div, 9600)

    def set_baud(self, baud, save=False):
        """Put the module at `baud` (tests: as if configured earlier)."""
        div = [d for d, b in DIVISORS.items() if b == baud][0]
        self.zones[ZONE_BAUD:ZONE_BAUD + 2] = bytes((div & 0xFF, div >> 8))
        self.baud = baud
        if save:
            z = bytearray(self.saved)
            z[ZONE_BAUD:ZONE_BAUD + 2] = self.zones[ZONE_BAUD:ZONE_BAUD + 2]
            self.saved = bytes(z)

    @property
    def mode(self):
        return self.zones[0] & 3

    def _wire_ok(self):
        return self.uart is not None and self.uart.baudrate == self.baud

    def _reply(self, data):
        r = reply(data)
        fault = self.faults.pop(0) if self.faults else None
        if fault == "bad_crc":
            r = r[:-1] + bytes(((r[-1] + 1) & 0xFF,))
        elif fault == "fail":
            c = crc16(b"\x01\x01\x00")  # type 01: the module could not do it
            r = b"\x02\x00\x01\x01\x00" + bytes((c >> 8, c & 0xFF))
        elif fault == "truncate":
            r = r[:4]
        self._send(r)

    def _send(self, data):
        if self.uart is None:
            return
        if not self._wire_ok():
            # wrong baud rate: the host's UART samples garbage
            data = bytes((b ^ 0x5A) | 0x80 for b in data)
        self.uart.deliver(data)

    # --- the host writes -----------------------------------------------------------
    def on_uart_write(self, data):
        with self._lock:
            if self.silent or not self._wire_ok():
                return
            self._buf += data
            self._parse()

    def _parse(self):
        buf = self._buf
        while True:
            i = buf.find(b"\x7e\x00")
            if i < 0:
                del buf[: max(len(buf) - 1, 0)]
                return
            del buf[:i]
            if len(buf) < 6:
                return
            n = buf[3]
            total = 2 + 1 + 1 + 2 + n + 2
            if len(buf) < total:
                return
            f = bytes(buf[:total])
            body, crc = f[2:-2], f[-2:]
            if crc != b"\xab\xcd" and crc != bytes((crc16(body) >> 8, crc16(body) & 0xFF)):
                del buf[:2]  # not a good frame: resync on the next 7E 00
                continue
            del buf[:total]
            self.commands.append(f)
            self._command(body[0], (body[2] << 8) | body[3], body[4:])

    def _command(self, typ, addr, data):
        if typ == 0x07 and len(data) == 1:
            k = data[0] or 1
            self._reply((bytes(self.zones[addr: addr + k]).ljust(k, b"\x00")))
        elif typ == 0x08 and addr + len(data) <= len(self.zones):
            self.zones[addr: addr + len(data)] = data
            if addr == 0x0002 and data[:1] == b"\x01":
                self.triggered = True  # command-triggered mode: read once
            self._reply((b"\x00"))
            if addr <= ZONE_BAUD + 1 and addr + len(data) > ZONE_BAUD:
                self.baud = self._zone_baud()  # answered at the old rate, now the new one
        elif typ == 0x09:
            self.saved = bytes(self.zones)
            self._reply((b"\x00"))
        # anything else: no reply, as the module does with commands it does not know

    # --- the world -----------------------------------------------------------------
    def show(self, text):
        """A phone's QR code in front of the scanner: True if the module read it out."""
        with self._lock:
            data = text.encode() if isinstance(text, str) else bytes(text)
            out = self.mode in (2, 3) or (self.mode == 1 and self.triggered)
            self.triggered = False
            self.scans.append((data, out))
            if not out or self.silent:
                return False
            tail = b""
            if self.zones[0x60] & 0x80:
                tail = TAILS.get((self.zones[0x60] >> 5) & 3, b"")
            self._send(data + tail)
            return True

    def noise(self, data):
        """Raw bytes on the scanner's TX line (a loose connector, a half-read code)."""
        if self.uart is not None:
            self.uart.deliver(bytes(data))
