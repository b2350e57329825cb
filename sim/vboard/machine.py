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
import errno
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
    """Hard reset, as the ESP32 port does it (ports/esp32/modmachine.c: mp_machine_reset()
    calls esp_restart()): nothing more runs - no `finally`, no `except SystemExit` - and
    the next boot's reset_cause() is HARD_RESET (ESP_RST_SW -> MP_HARD_RESET in
    mp_machine_reset_cause). The device host is told first, then the process kills itself
    (SIGKILL); the launcher reports that exit as EXIT_RESET (host.note_exit). A link
    server that cannot tell (sim/bareboard.py, HELLO without the flag) gets the old
    exit(EXIT_RESET)."""
    try:
        _call(OP_RESET)
    except OSError:
        pass
    if vlink.board.get("flags", 0) & vlink.HELLO_HARD_RESET:
        os.system("kill -9 $PPID")
        while True:  # the signal is on its way: run nothing more
            time.sleep_ms(1000)
    sys.exit(EXIT_RESET)


def soft_reset():
    # machine.soft_reset() raises SystemExit on the board too (modmachine.c:
    # mp_machine_soft_reset -> pyexec_system_exit); the next boot sees SOFT_RESET
    sys.exit(EXIT_RESET)


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


# --- the pin table ------------------------------------------------------------------------
# ports/esp32/machine_pin.h, CONFIG_IDF_TARGET_ESP32S3: GPIO 0-21 (19/20 are the native
# USB's D-/D+; they stay in the table unless CONFIG_USB_CDC_ENABLED, which no stock build
# sets), 26 only without PSRAM (!CONFIG_SPIRAM), 33-37 only without octal PSRAM
# (!CONFIG_SPIRAM_MODE_OCT), 38-46 (47/48 only with MICROPY_HW_ESP32S3_EXTENDED_IO).
# GPIO 22-25 do not exist on the S3 and 27-32 are the SPI flash's. Any other number is
# ValueError("invalid pin") (machine_pin.c: machine_pin_find). BRT_BOARD picks the build:
# "S3_SPIRAM_OCT" (the reference board: ESP32_GENERIC_S3, variant SPIRAM_OCT), "S3" (no
# PSRAM), "S3_SPIRAM" (quad PSRAM).
_BOARDS = ("S3_SPIRAM_OCT", "S3_SPIRAM", "S3")


def board_name():
    b = os.getenv("BRT_BOARD") or "S3_SPIRAM_OCT"
    if b not in _BOARDS:
        raise ValueError("BRT_BOARD %s: one of %s" % (b, ", ".join(_BOARDS)))
    return b


def valid_pins(board=None):
    """The GPIO numbers machine.Pin accepts on `board` (default: BRT_BOARD)."""
    b = board or board_name()
    pins = list(range(0, 22))
    if b == "S3":
        pins.append(26)
    if b != "S3_SPIRAM_OCT":
        pins += list(range(33, 38))
    return pins + list(range(38, 47))


_valid = []


def _check_pin(n):
    if not _valid:
        _valid.extend(valid_pins())
    if not isinstance(n, int) or n not in _valid:
        raise ValueError("invalid pin")
    return n


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
        self.id = _check_pin(id.id if isinstance(id, Pin) else id)
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
    # machine_pin_get_id(): a Pin or a number from the pin table, else "invalid pin"
    return p.id if isinstance(p, Pin) else _check_pin(p)


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

_UART_NUM = const(3)           # SOC_UART_NUM on the ESP32-S3 (and the ESP32)
_REPL_UART = const(0)          # MICROPY_HW_UART_REPL (ESP32_GENERIC_S3: UART REPL on)
_UART_FIFO_LEN = const(128)    # UART_HW_FIFO_LEN
_UART_FULL_THRESH = const(120)  # UART_FULL_THRESH_DEFAULT
_UART_TOUT_MAX = const(102)    # S3: UART_RX_TOUT_THRHD_V (1023 bit times) / 10-bit symbol
_TICK_MS = const(10)           # CONFIG_FREERTOS_HZ=100


class UART:
    """machine.UART on the virtual board, with the ESP32 port's rules (docs/simulator.md,
    "Board fidelity"); bytes go to the chip wired to this UART id in the device host.

    - ids 0..2 (SOC_UART_NUM on the S3), else ValueError("UART(n) does not exist")
      (ports/esp32/machine_uart.c: mp_machine_uart_make_new); UART0 is the REPL's, so its
      buffer sizes are fixed ("REPL UART buffer size is fixed", machine_uart.c);
    - rxbuf (default 256) must be over 128 and txbuf 0 or over 128 (ESP-IDF uart.c:
      uart_driver_install checks the sizes against UART_HW_FIFO_LEN, 128 bytes), else
      OSError (ESP_FAIL through check_esp_err);
    - delivery: received bytes reach the ring buffer only when the hardware FIFO holds
      120 (UART_FULL_THRESH_DEFAULT in IDF uart.c) or after an idle gap of rx_timeout
      characters. machine_uart.c sets rx_timeout = timeout_char // char_time_ms
      (char_time_ms = 12000 // baud + 1) and lowers the FIFO threshold to 1 only when
      that is 0. The device host models this (sim/devhost/uart.py) with a ring of
      rxbuf (+ the 128-byte FIFO): the newest bytes are dropped when it is full;
    - timeouts are FreeRTOS ticks of 10 ms (pdMS_TO_TICKS rounds down,
      CONFIG_FREERTOS_HZ=100): read() waits timeout // 10 ticks for the first byte and
      timeout_char // 10 ticks for each further chunk (machine_uart.c:
      mp_machine_uart_read -> uart_read_bytes), so timeout_char=5 waits 0 ms;
    - read()/readinto() return None when nothing came (EAGAIN), as on the ESP32."""

    def __init__(self, id, baudrate=115200, bits=8, parity=None, stop=1, tx=None, rx=None,
                 timeout=0, timeout_char=0, rxbuf=-1, txbuf=-1, **kw):
        if not isinstance(id, int) or id < 0 or id >= _UART_NUM:
            raise ValueError("UART(%s) does not exist" % (id,))
        self.id = id
        self._rxbuf = 256  # IDF minimum, the port's default
        self._txbuf = 256
        if tx is not None:
            _pin_id(tx)
        if rx is not None:
            _pin_id(rx)
        self.init(baudrate, timeout=timeout, timeout_char=timeout_char, rxbuf=rxbuf,
                  txbuf=txbuf)

    def init(self, baudrate=None, bits=8, parity=None, stop=1, timeout=None,
             timeout_char=None, rxbuf=-1, txbuf=-1, tx=None, rx=None, **kw):
        # what is not given keeps its value, as in machine_uart.c's init helper (a fresh
        # UART starts at 115200, timeouts 0)
        if baudrate is None:
            baudrate = getattr(self, "_baud", 115200)
        if timeout is None:
            timeout = getattr(self, "_timeout", 0)
        if timeout_char is None:
            timeout_char = getattr(self, "_timeout_char", 0)
        if (rxbuf >= 0 and rxbuf != self._rxbuf) or (txbuf >= 0 and txbuf != self._txbuf):
            if self.id == _REPL_UART:
                raise ValueError("REPL UART buffer size is fixed")
            if rxbuf >= 0:
                if rxbuf <= _UART_FIFO_LEN:
                    raise OSError(1, "ESP_FAIL: uart rx buffer length error (rxbuf must "
                                     "be > 128)")
                self._rxbuf = rxbuf
            if txbuf >= 0:
                if txbuf and txbuf <= _UART_FIFO_LEN:
                    raise OSError(1, "ESP_FAIL: uart tx buffer length error (txbuf must "
                                     "be 0 or > 128)")
                self._txbuf = txbuf
        for p in (tx, rx):
            if p is not None:
                _pin_id(p)
        if baudrate <= 0:
            raise ValueError("baudrate")
        self._baud = baudrate
        self._timeout = timeout
        self._timeout_char = timeout_char
        # machine_uart.c: "make sure it is at least as long as a whole character"
        char_time_ms = 12000 // baudrate + 1
        rx_timeout = timeout_char // char_time_ms
        if rx_timeout < 1:
            thresh, tout = 1, 1
        else:
            thresh, tout = _UART_FULL_THRESH, rx_timeout
            if tout > _UART_TOUT_MAX:  # IDF uart_set_rx_timeout: over the register's range
                raise OSError(1, "ESP_FAIL: uart_set_rx_timeout %d characters" % tout)
        self.fifo_threshold = thresh
        self.rx_timeout_chars = tout
        # the driver is (re)installed and "discard any input from previous configuration"
        # (uart_flush_input): the device host clears this UART's ring buffer
        _call(OP_UART_INIT, struct.pack(">BIHBB", self.id, baudrate, self._rxbuf, thresh, tout))

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
        # pdMS_TO_TICKS: whole 10 ms FreeRTOS ticks, rounded down
        t = self._timeout // _TICK_MS * _TICK_MS
        tc = self._timeout_char // _TICK_MS * _TICK_MS
        req = struct.pack(">BHIHH", self.id, n, t, tc, until)
        data = _call(OP_UART_READ, req, wait_ms=t + tc * (1 + n // _UART_FULL_THRESH))
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

_I2C_NUM = const(2)            # I2C_NUM_MAX on the ESP32-S3
_I2C_OVERHEAD_US = const(30)   # start/stop and the driver's set-up, per transfer


class I2C:
    """machine.I2C on the virtual board, with the ESP32 port's rules
    (ports/esp32/machine_i2c.c):

    - ids 0..1 (I2C_NUM_MAX on the S3), else ValueError("I2C(n) doesn't exist");
    - a missing device (no ACK) is OSError(ENODEV);
    - every transfer must finish within `timeout` us (default I2C_DEFAULT_TIMEOUT_US,
      50 ms), else OSError(ETIMEDOUT). The bus time is modelled as 9 bit times a byte
      (8 data + ACK) plus the address byte at `freq`: a full 1 KB OLED frame is ~23 ms at
      400 kHz, ~92 ms (ETIMEDOUT) at 100 kHz. The interpreter blocks for that time, as it
      does on the board, unless BRT_SIM_TIME=fast;
    - writeto() returns the number of bytes written (machine_hw_i2c_transfer returns len).
    SoftI2C is the same object here (the firmware uses the hardware I2C)."""

    def __init__(self, id=0, scl=None, sda=None, freq=400000, timeout=50000):
        if not isinstance(id, int) or id < 0 or id >= _I2C_NUM:
            raise ValueError("I2C(%s) doesn't exist" % (id,))
        for p in (scl, sda):
            if p is not None:
                _pin_id(p)
        self.id = id
        self._freq = freq
        self._timeout_us = timeout

    def _bus_time(self, nbytes):
        us = (nbytes + 1) * 9 * 1000000 // self._freq + _I2C_OVERHEAD_US
        if us > self._timeout_us:
            # the transfer would still be running at the driver's deadline
            raise OSError(errno.ETIMEDOUT, "I2C transfer %d us > timeout %d us"
                          % (us, self._timeout_us))
        block_us(us)

    def scan(self):
        return list(_call(OP_I2C_SCAN, bytes((self.id,))))

    def writeto(self, addr, buf, stop=True):
        self._bus_time(len(buf))
        r = _call(OP_I2C_WRITE, bytes((self.id, addr, 1 if stop else 0)) + bytes(buf))
        return (r[0] << 8) | r[1]

    def writevto(self, addr, vector, stop=True):
        data = b"".join(bytes(v) for v in vector)
        return self.writeto(addr, data, stop)

    def readfrom(self, addr, nbytes, stop=True):
        self._bus_time(nbytes)
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




def block_us(us):
    """Block the interpreter for a modelled bus/flash time (BRT_SIM_TIME=fast: don't)."""
    if _fast[0] is None:
        _fast[0] = os.getenv("BRT_SIM_TIME") == "fast"
    if not _fast[0] and us > 0:
        time.sleep_us(us)


_fast = [None]


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
    """machine.RTC: the system clock behind time.time() (ports/esp32/machine_rtc.c:
    datetime() reads gettimeofday and sets it with settimeofday, on the 2000 epoch).
    At power-up it reads 2000-01-01 00:00:00 plus the uptime (sim/vboard/time.py keeps
    it; the device host remembers it across machine.reset() and watchdog resets)."""

    def __init__(self, id=0):
        pass

    def datetime(self, dt=None):
        if dt is None:
            t = time.gmtime(time.time())
            return (t[0], t[1], t[2], t[6], t[3], t[4], t[5], 0)
        # (year, month, day, weekday, hours, minutes, seconds, subseconds)
        secs = time.mktime((dt[0], dt[1], dt[2], dt[4], dt[5], dt[6], 0, 0))
        set_clock = getattr(time, "_rtc_set", None)
        if set_clock is None:
            raise OSError(errno.ENODEV, "machine.RTC needs sim/vboard/time.py on the path")
        set_clock(secs)

    def init(self, dt):
        self.datetime(dt)
