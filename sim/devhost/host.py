"""The device host: the virtual board's chips behind one loopback TCP socket.

    host = DevHost(unique_id=bytes.fromhex("240ac4000001"))
    host.start()                       # serves in a thread; host.address = "127.0.0.1:port"
    env = dict(os.environ, **host.env())   # BRT_DEVHOST for the micropython process
    ...
    host.stop()

The control API (methods here, and the same as JSON through `control()`, see
sim/devhost/control.py) lets tests and the simulator's UI act on the virtual world.
"""

import errno
import json
import socket
import struct
import threading
import time

from . import wire
from .ds3231 import VirtualDS3231
from .gm65 import VirtualGM65
from .i2c import VirtualI2C
from .pins import Pins
from .pn532 import VirtualPN532
from .rf import Antenna
from .ssd1306 import VirtualSSD1306
from .uart import VirtualUart

# The reference board's wiring (firmware/board.py has the same numbers).
UART_PN532 = 1
UART_QR = 2
I2C_BUS = 0
ADDR_PN532 = 0x24
ADDR_SSD1306 = 0x3C
ADDR_DS3231 = 0x68
PIN_NAMES = {4: "green", 5: "red", 6: "buzzer"}


class Wlan:
    """Wi-Fi as the firmware sees it, with the ESP32 port's states and delays
    (ports/esp32/network_wlan.c):

    - connect() returns at once; isconnected() is True only once the station has an IP
      (IP_EVENT_STA_GOT_IP sets wifi_sta_connected), `join_ms` after the connect() or
      after the access point came into range, whichever is later;
    - status(): 1000 STAT_IDLE (nothing requested, or after disconnect()), 1001
      STAT_CONNECTING (trying), 1010 STAT_GOT_IP; a failed attempt leaves the reason:
      201 WIFI_REASON_NO_AP_FOUND (AP out of range or another SSID), 202
      WIFI_REASON_AUTH_FAIL (wrong key);
    - the port reconnects by itself after a failure (conf_wifi_sta_reconnects = 0: no
      limit), so a bus that drives back into range joins without a new connect().
    `reachable`: the depot's AP is in range. `psk` None accepts any key."""

    def __init__(self, ssid="depot", psk=None, join_ms=1500):
        self.ssid = ssid
        self.psk = psk
        self.join_ms = join_ms
        self._reachable = False
        self._reach_at = 0.0
        self.active = False
        self.joined = None  # ssid the firmware asked for (connect requested)
        self.key = None
        self._req_at = 0.0
        self.ip = "10.0.0.17"
        self.connects = 0

    @property
    def reachable(self):
        return self._reachable

    @reachable.setter
    def reachable(self, v):
        v = bool(v)
        if v and not self._reachable:
            self._reach_at = time.monotonic()
        self._reachable = v

    def request(self, ssid, key):
        self.joined = ssid
        self.key = key
        self._req_at = time.monotonic()
        self.connects += 1

    def _key_ok(self):
        return self.psk is None or self.key == self.psk

    def connected(self):
        if not (self.active and self._reachable and self.joined == self.ssid and self._key_ok()):
            return False
        since = max(self._req_at, self._reach_at)
        return time.monotonic() - since >= self.join_ms / 1000.0

    def status(self):
        if self.connected():
            return 1010
        if not self.active or self.joined is None:
            return 1000
        if time.monotonic() - self._req_at < self.join_ms / 1000.0:
            return 1001  # the first attempt is still running
        if not self._reachable or self.joined != self.ssid:
            return 201
        if not self._key_ok():
            return 202
        return 1001  # associated, waiting for the IP (or retrying after coming in range)


class DevHost:
    def __init__(self, unique_id=b"\x24\x0a\xc4\x00\x00\x01", pn532_bus="hsu",
                 ssid="depot", psk=None, host="127.0.0.1", port=0, antenna=None):
        self.unique_id = bytes(unique_id)
        # the RF side: phones presented in this process, or nfcpy (nfcpy_rf.NfcpyAntenna)
        self.antenna = antenna if antenna is not None else Antenna()
        self.pn532 = VirtualPN532(self.antenna)
        self.gm65 = VirtualGM65()
        self.ssd1306 = VirtualSSD1306()
        self.ds3231 = VirtualDS3231()
        self.uarts = {UART_QR: VirtualUart(UART_QR, self.gm65)}
        self.i2c = {I2C_BUS: VirtualI2C(I2C_BUS)}
        self.i2c[I2C_BUS].attach(ADDR_SSD1306, self.ssd1306)
        self.i2c[I2C_BUS].attach(ADDR_DS3231, self.ds3231)
        if pn532_bus == "i2c":
            self.i2c[I2C_BUS].attach(ADDR_PN532, self.pn532)
        else:
            self.uarts[UART_PN532] = VirtualUart(UART_PN532, self.pn532)
        self.pins = Pins(PIN_NAMES)
        self.wlan = Wlan(ssid, psk)
        self.reset_cause = wire.PWRON_RESET
        self.reset_requested = False  # machine.reset() seen in the running process
        # the ESP32's system clock (time.time(), machine.RTC): 0 = 2000-01-01 at power-up,
        # kept over machine.reset()/WDT resets, lost at power-on (ESP-IDF "System Time")
        self.power_on_at = time.monotonic()
        self.board_rtc = None  # (seconds since 2000, monotonic time it was set)
        self.wdt_timeout_ms = None
        self.wdt_fed = None
        self.events = []  # (monotonic time, kind, detail)
        self._bind = (host, port)
        self._srv = None
        self._threads = []
        self._conns = []
        self._lock = threading.Lock()
        self.address = None

    # --- lifecycle ---------------------------------------------------------------------
    def start(self):
        srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(self._bind)
        srv.listen(8)
        self._srv = srv
        h, p = srv.getsockname()
        self.address = "%s:%d" % (h, p)
        t = threading.Thread(target=self._accept_loop, name="devhost-accept", daemon=True)
        t.start()
        self._threads.append(t)
        return self.address

    def env(self):
        """Environment variables that point a micropython process at this device host."""
        return {"BRT_DEVHOST": self.address}

    def stop(self):
        srv, self._srv = self._srv, None
        if srv is not None:
            try:
                srv.close()
            except OSError:
                pass
        for c in list(self._conns):
            try:
                c.shutdown(socket.SHUT_RDWR)
                c.close()
            except OSError:
                pass

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def note(self, kind, detail=None):
        with self._lock:
            self.events.append((time.monotonic(), kind, detail))

    def wdt_expired(self):
        """True if the firmware armed the watchdog and its deadline has passed."""
        if self.wdt_timeout_ms is None or self.wdt_fed is None:
            return False
        return time.monotonic() - self.wdt_fed > self.wdt_timeout_ms / 1000.0

    def note_exit(self, returncode):
        """The launcher reports how the firmware process ended; the next boot's
        machine.reset_cause() follows from it. Returns the effective exit code: a
        process the watchdog thread had to kill (stuck in pure Python) counts as
        EXIT_WDT, because the host saw the deadline pass."""
        hard = self.reset_requested
        self.reset_requested = False
        if returncode == -9 and hard:
            returncode = wire.EXIT_RESET  # machine.reset() killed its own process
        elif returncode == -9 and self.wdt_expired():
            returncode = wire.EXIT_WDT
        self.wdt_timeout_ms = self.wdt_fed = None  # the next boot starts unarmed
        if returncode == wire.EXIT_WDT:
            self.reset_cause = wire.WDT_RESET
            self.note("wdt_reset")
        elif returncode == wire.EXIT_RESET:
            # machine.reset() is esp_restart(): HARD_RESET (modmachine.c); a
            # machine.soft_reset() (SystemExit, no RESET op) is SOFT_RESET
            self.reset_cause = wire.HARD_RESET if hard else wire.SOFT_RESET
        else:
            self.reset_cause = wire.PWRON_RESET  # power cut or crash: a cold start
            self.power_on()
        self.note("exit", returncode)
        return returncode

    def power_on(self):
        """Power comes back: the ESP32's system clock starts again at 2000-01-01."""
        self.power_on_at = time.monotonic()
        self.board_rtc = None

    def board_time(self):
        """The board's time.time() now, in seconds since 2000 (float)."""
        now = time.monotonic()
        if self.board_rtc is None:
            return now - self.power_on_at
        return self.board_rtc[0] + (now - self.board_rtc[1])

    def set_board_time(self, seconds_2000):
        self.board_rtc = (float(seconds_2000), time.monotonic())

    # --- serving -----------------------------------------------------------------------
    def _accept_loop(self):
        while self._srv is not None:
            try:
                conn, _ = self._srv.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._conns.append(conn)
            t = threading.Thread(target=self._serve, args=(conn,), name="devhost-conn",
                                 daemon=True)
            t.start()

    def _serve(self, conn):
        try:
            while True:
                try:
                    hdr = wire.recv_exact(conn, 3)
                    n = (hdr[1] << 8) | hdr[2]
                    payload = wire.recv_exact(conn, n) if n else b""
                except (ConnectionError, OSError):
                    return
                conn.sendall(self.handle(hdr[0], payload))
        except OSError:
            return
        finally:
            if conn in self._conns:
                self._conns.remove(conn)
            conn.close()

    def handle(self, op, payload):
        """One request from the virtual board -> one reply (bytes)."""
        try:
            fn = _OPS.get(op)
            if fn is None:
                return wire.reply(wire.ST_VALUEERROR, b"unknown op 0x%02x" % op)
            return wire.reply(wire.ST_OK, fn(self, payload) or b"")
        except wire.LinkOSError as e:
            return wire.reply(wire.ST_OSERROR, bytes((e.errno & 0xFF,)) + e.msg.encode()[:200])
        except (ValueError, IndexError, KeyError, struct.error) as e:
            return wire.reply(wire.ST_VALUEERROR, ("bad request: %s" % e).encode()[:200])
        except Exception as e:  # noqa: BLE001 - a bug in a virtual chip: an I/O error on
            # the firmware's bus (visible in host.events), not a dead device host
            self.note("devhost_error", repr(e))
            return wire.reply(wire.ST_OSERROR, bytes((errno.EIO,)) + repr(e).encode()[:200])

    # --- ops ---------------------------------------------------------------------------
    def _op_hello(self, p):
        self.note("boot", p.decode("ascii", "replace"))
        self.reset_requested = False
        return (bytes((len(self.unique_id),)) + self.unique_id
                + bytes((self.reset_cause, wire.HELLO_HARD_RESET)))

    def _op_control(self, p):
        from .control import dispatch
        return json.dumps(dispatch(self, json.loads(p.decode()))).encode()

    def _uart(self, uid):
        u = self.uarts.get(uid)
        if u is None:
            raise wire.LinkOSError(errno.ENODEV, "nothing wired to UART%d" % uid)
        return u

    def _op_uart_init(self, p):
        uid, baud = struct.unpack(">BI", p[:5])
        u = self.uarts.get(uid)
        if u is not None:
            if len(p) >= 9:  # rxbuf, FIFO threshold, rx timeout (characters)
                rxbuf, thresh, tout = struct.unpack(">HBB", p[5:9])
                u.init(baud, rxbuf=rxbuf, fifo_threshold=thresh, rx_timeout_chars=tout)
            else:
                u.init(baud)

    def _op_uart_write(self, p):
        u = self.uarts.get(p[0])
        if u is not None:  # an unwired UART swallows bytes, like a floating TX pin
            u.write(p[1:])

    def _op_uart_read(self, p):
        uid, n, tmo, tchar, until = struct.unpack(">BHIHH", p[:11])
        u = self.uarts.get(uid)
        if u is None:
            time.sleep(min(tmo, 5000) / 1000.0)
            return b""
        return u.read(n, min(tmo, 60000), tchar, None if until == 0xFFFF else until)

    def _op_uart_any(self, p):
        u = self.uarts.get(p[0])
        return struct.pack(">I", u.any() if u is not None else 0)

    def _bus(self, bid):
        b = self.i2c.get(bid)
        if b is None:
            raise wire.LinkOSError(errno.ENODEV, "no I2C bus %d" % bid)
        return b

    def _op_i2c_write(self, p):
        acks = self._bus(p[0]).write(p[1], p[3:], bool(p[2]))
        return struct.pack(">H", acks)

    def _op_i2c_read(self, p):
        bid, addr, stop, n = struct.unpack(">BBBH", p[:5])
        return self._bus(bid).read(addr, n, bool(stop))

    def _op_i2c_scan(self, p):
        return bytes(self._bus(p[0]).scan())

    def _op_pin_init(self, p):
        self.pins.init(p[0], p[1], p[2], None if p[3] == 0xFF else p[3])

    def _op_pin_set(self, p):
        self.pins.set(p[0], p[1])

    def _op_pin_get(self, p):
        return bytes((self.pins.get(p[0]),))

    def _op_pwm(self, p):
        pin, freq, duty = struct.unpack(">BIH", p[:7])
        self.pins.set_pwm(pin, freq, duty)

    def _op_wdt_start(self, p):
        self.wdt_timeout_ms = struct.unpack(">I", p[:4])[0]
        self.wdt_fed = time.monotonic()
        self.note("wdt_start", self.wdt_timeout_ms)

    def _op_wdt_feed(self, p):
        self.wdt_fed = time.monotonic()

    def _op_reset(self, p):
        self.reset_requested = True
        self.note("reset")

    def _op_wlan(self, p):
        sub, w = p[0], self.wlan
        if sub == 0:  # active(set?)
            if p[1] != 0xFF:
                w.active = bool(p[1])
                if not w.active:
                    w.joined = None
            return bytes((int(w.active),))
        if sub == 1:  # connect ssid \0 key: returns at once (network_wlan.c)
            ssid, _, key = p[1:].partition(b"\x00")
            if not w.active:
                raise wire.LinkOSError(errno.EPERM, "Wifi Not Started")
            w.request(ssid.decode("utf-8", "replace"), key.decode("utf-8", "replace"))
            return b""
        if sub == 2:  # status: connected, status code, ip
            up = w.connected()
            return struct.pack(">BH", int(up), 1010 if up else w.status()) + w.ip.encode()
        if sub == 3:  # disconnect
            w.joined = None
            return b""
        raise ValueError("wlan sub-op %d" % sub)


_OPS = {
    wire.OP_HELLO: DevHost._op_hello,
    wire.OP_CONTROL: DevHost._op_control,
    wire.OP_UART_INIT: DevHost._op_uart_init,
    wire.OP_UART_WRITE: DevHost._op_uart_write,
    wire.OP_UART_READ: DevHost._op_uart_read,
    wire.OP_UART_ANY: DevHost._op_uart_any,
    wire.OP_I2C_WRITE: DevHost._op_i2c_write,
    wire.OP_I2C_READ: DevHost._op_i2c_read,
    wire.OP_I2C_SCAN: DevHost._op_i2c_scan,
    wire.OP_PIN_INIT: DevHost._op_pin_init,
    wire.OP_PIN_SET: DevHost._op_pin_set,
    wire.OP_PIN_GET: DevHost._op_pin_get,
    wire.OP_PWM: DevHost._op_pwm,
    wire.OP_WDT_START: DevHost._op_wdt_start,
    wire.OP_WDT_FEED: DevHost._op_wdt_feed,
    wire.OP_RESET: DevHost._op_reset,
    wire.OP_WLAN: DevHost._op_wlan,
}
