"""The virtual-board link: framing and op codes shared with sim/vboard/machine.py.

Request:  op (1 byte) | length (2 bytes, big-endian) | payload
Reply:    status (1)  | length (2)                   | payload
Status 0 = ok, 1 = OSError (payload: errno byte + message), 2 = ValueError (message).
Full table of ops and payloads: docs/simulator.md.
"""

import errno
import struct

OP_HELLO = 0x01
OP_CONTROL = 0x02
OP_UART_INIT = 0x10
OP_UART_WRITE = 0x11
OP_UART_READ = 0x12
OP_UART_ANY = 0x13
OP_I2C_WRITE = 0x20
OP_I2C_READ = 0x21
OP_I2C_SCAN = 0x22
OP_PIN_INIT = 0x30
OP_PIN_SET = 0x31
OP_PIN_GET = 0x32
OP_PWM = 0x33
OP_WDT_START = 0x40
OP_WDT_FEED = 0x41
OP_RESET = 0x42
OP_WLAN = 0x50

HELLO_HARD_RESET = 1  # HELLO flag: machine.reset() may kill its process (note_exit knows)

ST_OK = 0
ST_OSERROR = 1
ST_VALUEERROR = 2

EXIT_RESET = 70
EXIT_WDT = 71

PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
SOFT_RESET = 5

MAX_PAYLOAD = 0xFFFF


class LinkOSError(Exception):
    """Raised by a handler to answer the firmware with OSError(errno)."""

    def __init__(self, err=errno.EIO, msg=""):
        super().__init__(err, msg)
        self.errno = err
        self.msg = msg or errno.errorcode.get(err, "EIO")


def reply(status, payload=b""):
    if len(payload) > MAX_PAYLOAD:
        raise ValueError("reply too long")
    return struct.pack(">BH", status, len(payload)) + payload


def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("link closed")
        buf += chunk
    return bytes(buf)
