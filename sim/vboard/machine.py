# The virtual board's `machine` module (MicroPython, simulator only).
#
# Put on the firmware's import path (MICROPYPATH=firmware:sim/vboard) it replaces the
# ESP32's `machine`: UART, I2C, Pin, PWM, WDT, RTC, unique_id(), reset() carry their bytes
# and events over one TCP connection on loopback to the device host (sim/devhost, CPython),
# where virtual chips answer with their real wire protocols. The address comes from the
# environment: BRT_DEVHOST=127.0.0.1:port. The link protocol is in docs/simulator.md.
#
# Every call is one request and one reply, so a dead device host shows up as OSError on
# the next bus access (like a dead bus), never as a hang: the socket has a timeout, and
# every wait the firmware asks for (UART timeouts) is done by the device host and bounded.
import os
import struct
import sys
import time

import vlink
from micropython import const
from vlink import (  # noqa: F401 - EXIT_* and OP_* are part of this module's surface
    EXIT_RESET, EXIT_WDT, OP_CONTROL, OP_I2C_READ, OP_I2C_SCAN, OP_I2C_WRITE, OP_PIN_GET,
    OP_PIN_INIT, OP_PIN_SET, OP_PWM, OP_RESET, OP_UART_ANY, OP_UART_INIT, OP_UART_READ,
    OP_UART_WRITE, OP_WDT_FEED, OP_WDT_START, OP_WLAN,
)
from vlink import call as _call
from vlink import ncalls as _ncalls  # noqa: F401 - read by bench/wire_mp.py

# reset causes, numbered as on the ESP32 port
PWRON_RESET = const(1)
HARD_RESET = const(2)
WDT_RESET = const(3)
DEEPSLEEP_RESET = const(4)
SOFT_RESET = const(5)

def sim_control(request_json):
    """Simulator only: send a control-API request (JSON text) to the device host, return
    its JSON reply text. Lets tests running inside MicroPython drive the virtual world."""
    return str(bytes(_call(OP_CONTROL, request_json.encode())), "utf-8")


# --- board-level functions -------------------------------------------------------------

def unique_id():
    if vlink.sock is None:
        vlink.connect()
    return vlink.board["unique_id"]


def reset_cause():
    if vlink.sock is None:
        vlink.connect()
    return vlink.board["reset_cause"]


def reset():
    """Hard reset: tell the device host, then end the process with EXIT_RESET; the
    simulator's launcher starts the firmware again."""
    try:
        _call(OP_RESET)
    except OSError:
        pass
    sys.exit(EXIT_RESET)


def soft_reset():
    reset()


def freq(hz=None):
    return 240000000


def idle():
    time.sleep_ms(1)


def lightsleep(ms=None):
    time.sleep_ms(ms or 1)


def disable_irq():
    return 0


def enable_irq(state=0):
    pass


# --- Pin and PWM ------------------------------------------------------------------------

class Pin:
    IN = 1
    OUT = 3
    OPEN_DRAIN = 7
    PULL_UP = 1
    PULL_DOWN = 2
    IRQ_RISING = 1
    IRQ_FALLING = 2

    def __init__(self, id, mode=-1, pull=-1, value=None):
        self.id = id
        self.init(mode, pull, value)

    def init(self, mode=-1, pull=-1, value=None):
        v = 0xFF if value is None else (1 if value else 0)
        _call(OP_PIN_INIT, bytes((self.id, mode & 0xFF, pull & 0xFF, v)))

    def value(self, v=None):
        if v is None:
            return _call(OP_PIN_GET, bytes((self.id,)))[0]
        _call(OP_PIN_SET, bytes((self.id, 1 if v else 0)))

    def __call__(self, v=None):
        return self.value(v)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def irq(self, handler=None, trigger=3):
        # no interrupts on the virtual board: the firmware polls (it does on the ESP32 too)
        return None

    def __repr__(self):
        return "Pin(%d)" % self.id


def _pin_id(p):
    return p.id if isinstance(p, Pin) else int(p)


class PWM:
    def __init__(self, pin, freq=0, duty_u16=None, duty=None):
        self._pin = _pin_id(pin)
        self._freq = freq or 5000
        self._duty = 0
        if duty is not None:
            self._duty = duty * 64
        if duty_u16 is not None:
            self._duty = duty_u16
        self._send()

    def _send(self):
        _call(OP_PWM, struct.pack(">BIH", self._pin, self._freq, self._duty))

    def freq(self, f=None):
        if f is None:
            return self._freq
        self._freq = f
        self._send()

    def duty_u16(self, d=None):
        if d is None:
            return self._duty
        self._duty = max(0, min(65535, d))
        self._send()

    def duty(self, d=None):
        if d is None:
            return self._duty >> 6
        self.duty_u16(d * 64)

    def init(self, freq=None, duty_u16=None):
        if freq is not None:
            self._freq = freq
        if duty_u16 is not None:
            self._duty = duty_u16
        self._send()

    def deinit(self):
        _call(OP_PWM, struct.pack(">BIH", self._pin, 0, 0))


# --- UART ---------------------------------------------------------------------------------

class UART:
    """machine.UART on the virtual board: bytes go to the chip wired to this UART id in the
    device host. read()/readinto()/readline() wait at most `timeout` ms for the first byte
    and `timeout_char` ms between bytes (the device host does the waiting), then return
    what came — None when nothing did, as on the ESP32."""

    def __init__(self, id, baudrate=115200, bits=8, parity=None, stop=1, tx=None, rx=None,
                 timeout=0, timeout_char=0, rxbuf=256, **kw):
        self.id = id
        self.init(baudrate, timeout=timeout, timeout_char=timeout_char)

    def init(self, baudrate=115200, bits=8, parity=None, stop=1, timeout=0, timeout_char=0,
             **kw):
        self._baud = baudrate
        self._timeout = timeout
        self._timeout_char = timeout_char
        _call(OP_UART_INIT, struct.pack(">BI", self.id, baudrate))

    def deinit(self):
        pass

    def write(self, buf):
        if not len(buf):
            return 0
        _call(OP_UART_WRITE, bytes((self.id,)) + bytes(buf))
        return len(buf)

    def any(self):
        return struct.unpack(">I", _call(OP_UART_ANY, bytes((self.id,))))[0]

    def _read(self, n, until=0xFFFF):
        if n <= 0:
            return b""
        n = min(n, 4096)
        t = self._timeout
        req = struct.pack(">BHIHH", self.id, n, t, self._timeout_char, until)
        data = _call(OP_UART_READ, req, wait_ms=t + self._timeout_char)
        return bytes(data) if data else None

    def read(self, n=-1):
        if n is None or n < 0:
            n = 4096
        return self._read(n)

    def readinto(self, buf, n=-1):
        if n < 0:
            n = len(buf)
        data = self._read(n)
        if not data:
            return None
        buf[:len(data)] = data
        return len(data)

    def readline(self):
        return self._read(4096, 0x0A)

    def flush(self):
        pass

    def txdone(self):
        return True

    def sendbreak(self):
        pass


# --- I2C ----------------------------------------------------------------------------------

class I2C:
    """machine.I2C on the virtual board. A missing device answers with OSError(ENODEV) as
    the ESP32 port does when the address is not acknowledged."""

    def __init__(self, id=0, scl=None, sda=None, freq=400000, timeout=50000):
        self.id = id
        self._freq = freq

    def scan(self):
        return list(_call(OP_I2C_SCAN, bytes((self.id,))))

    def writeto(self, addr, buf, stop=True):
        r = _call(OP_I2C_WRITE, bytes((self.id, addr, 1 if stop else 0)) + bytes(buf))
        return (r[0] << 8) | r[1]

    def writevto(self, addr, vector, stop=True):
        data = b"".join(bytes(v) for v in vector)
        return self.writeto(addr, data, stop)

    def readfrom(self, addr, nbytes, stop=True):
        return bytes(_call(OP_I2C_READ, struct.pack(">BBBH", self.id, addr, 1 if stop else 0,
                                                    nbytes)))

    def readfrom_into(self, addr, buf, stop=True):
        data = self.readfrom(addr, len(buf), stop)
        buf[:len(data)] = data

    def _memaddr(self, memaddr, addrsize):
        return memaddr.to_bytes(addrsize // 8, "big")

    def writeto_mem(self, addr, memaddr, buf, addrsize=8):
        self.writeto(addr, self._memaddr(memaddr, addrsize) + bytes(buf))

    def readfrom_mem(self, addr, memaddr, nbytes, addrsize=8):
        self.writeto(addr, self._memaddr(memaddr, addrsize), False)
        return self.readfrom(addr, nbytes)

    def readfrom_mem_into(self, addr, memaddr, buf, addrsize=8):
        data = self.readfrom_mem(addr, memaddr, len(buf), addrsize)
        buf[:len(data)] = data


SoftI2C = I2C


# --- WDT ----------------------------------------------------------------------------------

_wdt = None


class WDT:
    """A watchdog that really resets. A thread watches the deadline; once it is missed,
    the next call into the virtual board (any bus access, feed(), ...) ends the process
    with EXIT_WDT. A firmware stuck in pure Python that never touches the board is
    killed by the thread after a grace period (SIGKILL); the device host saw the
    deadline pass, so the launcher reports that as EXIT_WDT too (docs/simulator.md).
    Once started it cannot be stopped, as on the ESP32."""

    def __init__(self, id=0, timeout=5000):
        global _wdt
        if timeout < 1:
            raise ValueError("WDT timeout")
        self._timeout = timeout
        self._deadline = time.ticks_add(time.ticks_ms(), timeout)
        _call(OP_WDT_START, struct.pack(">I", timeout))
        if _wdt is None:
            _wdt = self
            import _thread
            _thread.start_new_thread(_wdt_watch, ())
        else:
            _wdt._timeout = timeout
            _wdt.feed()

    def feed(self):
        w = _wdt or self
        _call(OP_WDT_FEED)  # raises SystemExit if the deadline has already passed
        w._deadline = time.ticks_add(time.ticks_ms(), w._timeout)


_WDT_GRACE_MS = const(1000)


def _wdt_watch():
    while True:
        time.sleep_ms(10)
        w = _wdt
        if w is not None and time.ticks_diff(time.ticks_ms(), w._deadline) > 0:
            vlink.wdt_expired[0] = True  # the next board call exits with EXIT_WDT
            time.sleep_ms(_WDT_GRACE_MS)
            # the main thread did not come by the board in the grace period
            os.system("kill -9 $PPID")
            return


# --- RTC (the ESP32's own clock; the DS3231 is the trusted one) ------------------------------

class RTC:
    _offset = 0  # seconds added to the port's clock

    def __init__(self, id=0):
        pass

    def datetime(self, dt=None):
        if dt is None:
            t = time.gmtime(int(time.time()) + RTC._offset)
            return (t[0], t[1], t[2], t[6], t[3], t[4], t[5], 0)
        want = time.mktime((dt[0], dt[1], dt[2], dt[4], dt[5], dt[6], 0, 0))
        RTC._offset = want - int(time.time())

    def init(self, dt):
        self.datetime(dt)
