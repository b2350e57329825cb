# The virtual board's link to the device host (MicroPython, simulator only): one TCP
# connection on loopback to sim/devhost, strictly one request and one reply per call.
# machine.py imports it (network.py goes through machine), so the link's state lives as
# long as `machine` does — firmware that drops modules from sys.modules to free the heap
# must keep `machine` (and may keep `vlink`). The protocol is in docs/simulator.md.
#
# A dead device host shows up as OSError on the next call (like a dead bus), never as a
# hang: the socket has a timeout, and every wait the firmware asks for is bounded.
import os
import socket
import sys

from micropython import const

# sim/vboard/socket.py (the board's sockets, gated by its Wi-Fi) keeps the unix port's
# own module as _real: the link itself is not on the board's Wi-Fi
socket = getattr(socket, "_real", socket)

# --- link ops (keep in step with sim/devhost/wire.py; a host test compares them) ---
OP_HELLO = const(0x01)
OP_CONTROL = const(0x02)
OP_UART_INIT = const(0x10)
OP_UART_WRITE = const(0x11)
OP_UART_READ = const(0x12)
OP_UART_ANY = const(0x13)
OP_I2C_WRITE = const(0x20)
OP_I2C_READ = const(0x21)
OP_I2C_SCAN = const(0x22)
OP_PIN_INIT = const(0x30)
OP_PIN_SET = const(0x31)
OP_PIN_GET = const(0x32)
OP_PWM = const(0x33)
OP_WDT_START = const(0x40)
OP_WDT_FEED = const(0x41)
OP_RESET = const(0x42)
OP_WLAN = const(0x50)

# HELLO reply flags (byte after reset_cause; older link servers send none)
HELLO_HARD_RESET = const(1)  # machine.reset() may kill the process (the host notes it)

ST_OK = const(0)
ST_OSERROR = const(1)
ST_VALUEERROR = const(2)

# process exit codes the simulator's launcher tells apart (docs/simulator.md)
EXIT_RESET = const(70)  # machine.reset() / soft reset requested by the firmware
EXIT_WDT = const(71)  # the watchdog was not fed in time

_LINK_TIMEOUT_S = 5  # slack on top of any wait the firmware itself asked for

sock = None
board = {}  # filled by HELLO: unique_id, reset_cause
wdt_expired = [False]  # set by machine.WDT's watcher thread


def connect():
    global sock
    addr = os.getenv("BRT_DEVHOST")
    if not addr:
        raise OSError(19, "BRT_DEVHOST not set: no device host for the virtual board")
    host, port = addr.rsplit(":", 1)
    s = socket.socket()
    s.settimeout(_LINK_TIMEOUT_S)
    try:
        s.connect(socket.getaddrinfo(host, int(port))[0][-1])
    except OSError:
        s.close()
        raise
    try:
        s.setsockopt(6, 1, 1)  # IPPROTO_TCP, TCP_NODELAY
    except OSError:
        pass
    sock = s
    # HELLO carries the process id (for the launcher's bookkeeping) and gets the board's
    # identity back
    pid = b"0"
    try:
        with open("/proc/self/stat", "rb") as f:
            pid = f.read(16).split(b" ")[0]
    except OSError:
        pass
    r = call(OP_HELLO, b"vboard 1 " + pid)
    n = r[0]
    board["unique_id"] = bytes(r[1:1 + n])
    board["reset_cause"] = r[1 + n]
    board["flags"] = r[2 + n] if len(r) > 2 + n else 0


def _recv_exact(n):
    buf = bytearray(n)
    mv = memoryview(buf)
    got = 0
    while got < n:
        k = sock.readinto(mv[got:])
        if not k:
            raise OSError(104, "device host closed the link")
        got += k
    return buf


ncalls = [0]  # link round trips, for benchmarks


def call(op, payload=b"", wait_ms=0):
    """One request/reply; OSError if the device host is gone or the device says so."""
    global sock
    ncalls[0] += 1
    if wdt_expired[0]:
        sys.exit(EXIT_WDT)
    if sock is None:
        connect()
    s = sock
    try:
        if wait_ms:
            s.settimeout(_LINK_TIMEOUT_S + wait_ms / 1000)
        n = len(payload)
        # one write per request: split writes meet Nagle + delayed ACK (40 ms stalls)
        s.write(bytes((op, n >> 8, n & 0xFF)) + payload)
        h = _recv_exact(3)
        body = _recv_exact((h[1] << 8) | h[2]) if (h[1] or h[2]) else b""
        if wait_ms:
            s.settimeout(_LINK_TIMEOUT_S)
    except OSError:
        # a broken link stays broken: close it, the next call reconnects or fails again
        try:
            s.close()
        except OSError:
            pass
        sock = None
        raise
    st = h[0]
    if st == ST_OK:
        return body
    if st == ST_OSERROR:
        raise OSError(body[0], str(bytes(body[1:]), "utf-8"))
    raise ValueError(str(bytes(body), "utf-8"))
