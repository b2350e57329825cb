"""A UART of the virtual board: bytes the firmware writes go to the attached chip, bytes
the chip sends wait in an RX queue (with the time they arrive) until the firmware reads.

The firmware's read timeouts are honoured here, on the device-host side: a read waits
at most `timeout` ms for its first byte and `timeout_char` ms between bytes, like the
ESP32 port's UART driver.
"""

import threading
import time


class VirtualUart:
    def __init__(self, uid, device=None):
        self.id = uid
        self.baudrate = 0
        self.device = None
        self._rx = []  # [(arrival time, bytes)] in arrival order
        self._cv = threading.Condition()
        self.tx_log = []  # every write from the firmware, for tests and the UI
        self.rx_log = []  # every chunk delivered to the firmware
        self.log_limit = 2000
        self.model_wire_time = True  # bytes arrive no faster than the baud rate allows
        if device is not None:
            self.attach(device)

    def attach(self, device):
        self.device = device
        device.uart = self

    def init(self, baudrate):
        self.baudrate = baudrate

    # --- chip side -----------------------------------------------------------------
    def deliver(self, data, delay=0.0):
        """Queue bytes for the firmware; they become readable `delay` seconds from now."""
        if not data:
            return
        with self._cv:
            t = time.monotonic() + delay
            if self._rx and self._rx[-1][0] > t:
                t = self._rx[-1][0]  # bytes on one wire stay in order
            if self.model_wire_time and self.baudrate:
                t += len(data) * 10.0 / self.baudrate  # 8N1: 10 bit times a byte
            self._rx.append((t, bytes(data)))
            self._log(self.rx_log, data)
            self._cv.notify_all()

    def flush_rx(self):
        with self._cv:
            self._rx.clear()

    # --- firmware side -------------------------------------------------------------
    def write(self, data):
        with self._cv:
            self._log(self.tx_log, data)
        if self.device is not None:
            self.device.on_uart_write(bytes(data))

    def _ready(self, now):
        n = 0
        for t, chunk in self._rx:
            if t > now:
                break
            n += len(chunk)
        return n

    def _next_arrival(self):
        return self._rx[0][0] if self._rx else None

    def any(self):
        with self._cv:
            return self._ready(time.monotonic())

    def _take(self, n, until):
        out = bytearray()
        now = time.monotonic()
        while self._rx and len(out) < n and self._rx[0][0] <= now:
            t, chunk = self._rx[0]
            want = n - len(out)
            if until is not None:
                i = chunk.find(bytes((until,)))
                if 0 <= i < want:
                    want = i + 1
            out += chunk[:want]
            if want < len(chunk):
                self._rx[0] = (t, chunk[want:])
            else:
                self._rx.pop(0)
            if until is not None and out and out[-1] == until:
                break
        return bytes(out)

    def read(self, n, timeout_ms, timeout_char_ms, until=None):
        """Up to n bytes: wait for the first up to timeout_ms, then keep reading while
        bytes follow within timeout_char_ms, stop at n bytes or after `until`."""
        out = bytearray()
        deadline = time.monotonic() + timeout_ms / 1000.0
        with self._cv:
            while len(out) < n:
                out += self._take(n - len(out), until)
                if len(out) >= n or (until is not None and out and out[-1] == until):
                    break
                now = time.monotonic()
                if out:
                    # between characters: wait timeout_char for more
                    limit = now + max(timeout_char_ms, 0) / 1000.0
                    if not self._wait_for_data(limit):
                        break
                else:
                    if now >= deadline or not self._wait_for_data(deadline):
                        break
        return bytes(out)

    def _wait_for_data(self, limit):
        """Wait until bytes are readable or `limit` passes; True if bytes are readable."""
        while True:
            now = time.monotonic()
            if self._ready(now):
                return True
            if now >= limit:
                return False
            nxt = self._next_arrival()
            wait = limit - now
            if nxt is not None:
                wait = min(wait, max(nxt - now, 0.0005))
            self._cv.wait(wait)

    def _log(self, log, data):
        log.append(bytes(data))
        if len(log) > self.log_limit:
            del log[: len(log) - self.log_limit]
