"""The serial link to a MicroPython board: raw REPL and raw-paste mode over pyserial,
plus the maintenance handshake of a locked validator (docs/provisioning.md).

Own code rather than mpremote so that every failure becomes one of our typed errors
(port busy, no answer, locked) and every wait has a timeout.
"""

import errno
import json
import struct
import time

import serial

from .errors import BadConfig, DeviceError, DeviceLocked, NoAnswer, NoPort, PortBusy

RAW_PROMPT = b"raw REPL; CTRL-B to exit\r\n>"
RESULT = "@@M "


def open_port(port, baud=115200):
    try:
        return serial.Serial(port, baud, timeout=0.05, exclusive=True)
    except serial.SerialException as e:
        text = str(e)
        en = getattr(e, "errno", None)
        if en in (errno.EBUSY, errno.EAGAIN) or "exclusively lock" in text or "busy" in text:
            raise PortBusy("port %s is in use by another program" % port,
                           "close the serial monitor / other provision.py using it") from None
        if en == errno.ENOENT or "No such file" in text:
            raise NoPort("no serial port %s" % port, "check the cable; `provision.py ports`") from None
        if en == errno.EACCES or "Permission denied" in text:
            raise NoPort("no permission to open %s" % port,
                         "add yourself to the dialout group and log in again") from None
        raise NoPort("cannot open %s: %s" % (port, text)) from None


class Link:
    """A board on a serial port. Use as a context manager; `port` or an open `ser`."""

    def __init__(self, port=None, baud=115200, ser=None, timeout=10.0):
        self.port = port
        self.ser = ser or open_port(port, baud)
        self.timeout = timeout
        self.raw = False
        self._prompt = False  # the raw REPL's ">" already read
        self._rx = bytearray()  # read from the port, not yet consumed
        self.defined = set()  # helper names defined in this REPL session (install.py)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            if self.raw:
                self.ser.write(b"\x02")  # back to the friendly REPL
            self.ser.close()
        except (OSError, serial.SerialException):
            pass

    # --- bytes --------------------------------------------------------------------------
    def write(self, data):
        try:
            self.ser.write(data)
        except (OSError, serial.SerialException) as e:
            raise NoAnswer("serial write failed: %s" % e, "was the cable pulled?") from None

    def _read_some(self):
        try:
            return self.ser.read(max(1, min(4096, self.ser.in_waiting)))
        except (OSError, serial.SerialException) as e:
            raise NoAnswer("serial read failed: %s" % e, "was the cable pulled?") from None

    def read_until(self, marker, timeout):
        """Bytes up to and including `marker`; NoAnswer if it does not come in time.
        What arrived after the marker stays buffered for the next read."""
        buf = self._rx
        end = time.monotonic() + timeout
        while True:
            i = buf.find(marker)
            if i >= 0:
                out = bytes(buf[:i + len(marker)])
                del buf[:i + len(marker)]
                return out
            if time.monotonic() >= end:
                break
            buf += self._read_some()
        raise NoAnswer("no answer from the device (waited %.1f s for %r; got %r)"
                       % (timeout, marker, bytes(buf[-80:])))

    def _read_exact(self, n):
        end = time.monotonic() + self.timeout
        while len(self._rx) < n and time.monotonic() < end:
            self._rx += self._read_some()
        if len(self._rx) < n:
            raise NoAnswer("device stopped answering in the raw REPL")
        out = bytes(self._rx[:n])
        del self._rx[:n]
        return out

    def drain(self, quiet=0.1, limit=2.0):
        """Read and return what the device prints until it has been quiet for `quiet` s."""
        buf = bytearray(self._rx)
        self._rx.clear()
        end = time.monotonic() + limit
        last = time.monotonic()
        while time.monotonic() < end and time.monotonic() - last < quiet:
            chunk = self._read_some()
            if chunk:
                buf += chunk
                last = time.monotonic()
        return bytes(buf)

    # --- raw REPL -----------------------------------------------------------------------
    def enter_raw(self, attempts=3, wait=1.0):
        """Interrupt whatever runs and enter the raw REPL; DeviceLocked/NoAnswer if not."""
        for i in range(attempts):
            self.write(b"\r\x03")
            time.sleep(0.05)
            self.write(b"\x03")
            self.drain(0.1, 0.3)
            self.write(b"\r\x01")
            try:
                # a REPL answers within milliseconds; ask a silent board early whether it is
                # a locked validator (its maintenance window after a reset is short)
                self.read_until(RAW_PROMPT, wait / 2 if i == 0 else wait)
            except NoAnswer:
                # a locked validator ignores Ctrl-C/Ctrl-A but answers a maintenance hello
                if self.probe_locked(0.7):
                    raise DeviceLocked("the validator is locked (production mode): no REPL "
                                       "on its port", "run `provision.py unlock` (needs the "
                                       "depot registry) to open a maintenance session") from None
                continue
            self.raw, self._prompt = True, True
            self.defined.clear()  # the board may have been reset meanwhile
            return
        raise NoAnswer("no answer from a MicroPython REPL on %s" % self.port,
                       "is MicroPython flashed (`provision.py flash`)? a locked validator "
                       "serving riders is silent too: reset it and run `provision.py unlock`")

    def fresh(self):
        """The raw REPL on a clean interpreter, as mpremote gets it: interrupt, then a soft
        reset from the raw REPL (boot.py runs, main.py — the validator app — does not)."""
        self.enter_raw()
        self.soft_reset()

    def probe_locked(self, timeout=1.0):
        """Ask for a maintenance challenge; (device id, nonce) if a locked validator answers."""
        self.write(b"\r\nBRT-MAINT HELLO\r\n")
        try:
            return self._challenge(timeout)
        except NoAnswer:
            return None

    def _challenge(self, timeout):
        buf = self.read_until(b"BRT-MAINT CHALLENGE ", timeout)
        del buf
        line = self.read_until(b"\r\n", 1.0).decode("ascii", "replace").split()
        if len(line) != 2:
            raise NoAnswer("garbled maintenance challenge: %r" % line)
        return line[0], bytes.fromhex(line[1])

    def exec(self, code, timeout=None):
        """Run `code` in the raw REPL (raw-paste mode); return its stdout as text.
        A traceback on the device raises DeviceError with the device's message."""
        if not self.raw:
            self.enter_raw()
        if not self._prompt:
            self.read_until(b">", self.timeout)
        self._prompt = False
        data = code.encode() if isinstance(code, str) else code
        self.write(b"\x05A\x01")
        head = self._read_exact(2)
        if head == b"R\x01":
            self._paste(data)
        else:  # no raw-paste: plain raw REPL, in small pieces
            if head != b"R\x00":
                self.read_until(RAW_PROMPT, self.timeout)
            for i in range(0, len(data), 256):
                self.write(data[i:i + 256])
                time.sleep(0.01)
            self.write(b"\x04")
            if self._read_exact(2) != b"OK":
                raise NoAnswer("the raw REPL did not accept the command")
        t = timeout or self.timeout
        out = self.read_until(b"\x04", t)[:-1]
        err = self.read_until(b"\x04", t)[:-1]
        if err:
            text = err.decode("utf-8", "replace").strip()
            last = text.splitlines()[-1] if text else "(no message)"
            raise DeviceError("device error: %s" % last, text)
        return out.decode("utf-8", "replace")

    def _paste(self, data):
        window = struct.unpack("<H", self._read_exact(2))[0]
        remain = window
        i = 0
        while i < len(data):
            while remain == 0 or self._rx or self.ser.in_waiting:
                b = self._read_exact(1)
                if b == b"\x01":
                    remain += window
                elif b == b"\x04":  # the device ended the paste (e.g. out of memory)
                    self.write(b"\x04")
                    return
                else:
                    raise NoAnswer("unexpected byte %r during raw paste" % b)
            piece = data[i:i + remain]
            self.write(piece)
            remain -= len(piece)
            i += len(piece)
        self.write(b"\x04")
        self.read_until(b"\x04", self.timeout)

    def call(self, name, *args, timeout=None):
        """Run maint.<name>(*args) on the device; its result, or DeviceError/typed error."""
        code = "import maint\nmaint.run(%s)\n" % ", ".join(repr(a) for a in (name,) + args)
        try:
            out = self.exec(code, timeout)
        except DeviceError as e:
            if "maint" in e.msg and ("ImportError" in e.msg or "no module" in e.msg):
                raise DeviceError("the validator firmware is not installed on this board",
                                  "run `provision.py install` first") from None
            raise
        for line in out.splitlines():
            if line.startswith(RESULT):
                try:
                    res = json.loads(line[len(RESULT):])
                except ValueError:
                    res = None
                if not isinstance(res, dict):
                    raise DeviceError("garbled answer from maint.%s: %r" % (name, line[:120]),
                                      "a noisy cable or another program on the port?")
                if res.get("ok"):
                    return res.get("r")
                if res.get("err") == "bad_config":
                    raise BadConfig("the device refused the config: %s" % res.get("msg"))
                raise DeviceError("%s: %s" % (res.get("err"), res.get("msg")))
        raise DeviceError("no result from maint.%s: %r" % (name, out[-200:]))

    def clean(self):
        """Free what the interrupted app left in the REPL session (its modules and globals):
        used when a soft reset is not possible (a maintenance session would close)."""
        self.exec("import gc, sys\nfor _m in list(sys.modules):\n    del sys.modules[_m]\n"
                  "for _k in list(globals()):\n    if _k not in ('__name__', 'gc'):\n"
                  "        del globals()[_k]\ngc.collect()\n")

    def soft_reset(self, expect_raw=True):
        """Ctrl-D in the raw REPL: reboot the firmware (boot.py runs; main.py does not)."""
        if not self.raw:
            self.enter_raw()
        if not self._prompt:
            self.read_until(b">", self.timeout)
        self.write(b"\x04")
        self.read_until(b"soft reboot\r\n", self.timeout)
        self.raw, self._prompt = False, False
        self.defined.clear()
        if expect_raw:  # back in the raw REPL, as mpremote expects after a soft reset
            self.read_until(RAW_PROMPT, self.timeout)
            self.raw, self._prompt = True, True
