"""A UART of the virtual board, delivering bytes the way the ESP32 port does.

Bytes the firmware writes go to the attached chip. Bytes the chip sends travel on the
wire at the baud rate (10 bit times a byte, 8N1), land in the UART's hardware FIFO, and
reach the driver's ring buffer - the only place machine.UART.read()/any() see - only:

- when the FIFO holds `fifo_threshold` bytes (IDF uart.c: UART_FULL_THRESH_DEFAULT, 120;
  MicroPython lowers it to 1 only when timeout_char is shorter than one character,
  ports/esp32/machine_uart.c, mp_machine_uart_init_helper), or
- when the line has been idle for `rx_timeout_chars` characters after the last byte
  (the RX timeout interrupt; rx_timeout = timeout_char // char_time_ms, at least 1).

So at 9600 baud with timeout_char=5 a 440-byte QR line arrives as 120-byte bursts
125 ms apart, then a tail once the line goes quiet. The ring holds `rxbuf` bytes plus
the 128-byte hardware FIFO (UART_HW_FIFO_LEN); what arrives beyond that is dropped (the
newest bytes; `dropped` counts them).

Reads follow machine_uart.c's mp_machine_uart_read -> uart_read_bytes: wait up to
`timeout` for a first byte, then take what the ring holds, waiting up to `timeout_char`
for each further chunk. The vboard has already rounded both down to whole 10 ms
FreeRTOS ticks (pdMS_TO_TICKS), so timeout_char=5 means "no wait at all".
`model_wire_time = False` makes bytes arrive at once (chip unit tests).
"""

import threading
import time

FIFO_LEN = 128        # UART_HW_FIFO_LEN (ESP32, ESP32-S3)
FULL_THRESH = 120     # UART_FULL_THRESH_DEFAULT


class VirtualUart:
    def __init__(self, uid, device=None):
        self.id = uid
        self.baudrate = 0
        self.rxbuf = 256               # the port's default (the IDF minimum)
        self.fifo_threshold = 1        # timeout_char=0: every byte goes through at once
        self.rx_timeout_chars = 1
        self.device = None
        self._wire = []                # [(arrival time, byte)] not yet in the ring
        self._ring = bytearray()       # what the firmware can read
        self._last_arrival = 0.0
        self._cv = threading.Condition()
        self.dropped = 0               # bytes lost to a full ring buffer
        self.bursts = 0                # FIFO -> ring moves (interrupts), for tests
        self.last_read = None          # (timeout, timeout_char) ms of the last read
        self.tx_log = []  # every write from the firmware, for tests and the UI
        self.rx_log = []  # every chunk the chip sent, for tests and the UI
        self.log_limit = 2000
        self.model_wire_time = True  # bytes arrive no faster than the baud rate allows
        if device is not None:
            self.attach(device)

    def attach(self, device):
        self.device = device
        device.uart = self

    def init(self, baudrate, rxbuf=None, fifo_threshold=None, rx_timeout_chars=None):
        with self._cv:
            self.baudrate = baudrate
            if rxbuf is not None:
                self.rxbuf = rxbuf
            if fifo_threshold is not None:
                self.fifo_threshold = max(1, fifo_threshold)
            if rx_timeout_chars is not None:
                self.rx_timeout_chars = max(1, rx_timeout_chars)
            # uart_flush_input(): what already arrived is discarded; bytes still on the
            # wire come in under the new settings
            now = time.monotonic()
            self._ring.clear()
            while self._wire and self._wire[0][0] <= now:
                self._wire.pop(0)

    # --- chip side -----------------------------------------------------------------
    def _byte_time(self):
        if self.model_wire_time and self.baudrate:
            return 10.0 / self.baudrate  # 8N1: 10 bit times a byte
        return 0.0

    def deliver(self, data, delay=0.0):
        """Put bytes on the chip's TX line; the first starts `delay` seconds from now."""
        if not data:
            return
        with self._cv:
            bt = self._byte_time()
            t = max(time.monotonic() + delay, self._last_arrival)  # one wire: in order
            for b in bytes(data):
                t += bt
                self._wire.append((t, b))
            self._last_arrival = t
            self._log(self.rx_log, data)
            self._cv.notify_all()

    def flush_rx(self):
        with self._cv:
            self._wire.clear()
            self._ring.clear()

    # --- the FIFO -> ring buffer model ------------------------------------------------
    def _next_move(self):
        """(count, time) of the next FIFO -> ring move, or None if nothing is pending."""
        w = self._wire
        if not w:
            return None
        tout = self.rx_timeout_chars * self._byte_time()
        lim = min(self.fifo_threshold, len(w))
        for i in range(lim):
            if i + 1 == self.fifo_threshold:
                return i + 1, w[i][0]                   # FIFO full: interrupt
            if i + 1 == len(w) or w[i + 1][0] - w[i][0] > tout:
                return i + 1, w[i][0] + tout            # line idle: RX timeout
        return lim, w[lim - 1][0] + tout

    def _advance(self, now):
        """Move what the interrupts would have moved by `now`; returns the time of the
        next move (or None)."""
        while True:
            nxt = self._next_move()
            if nxt is None:
                return None
            n, t = nxt
            if t > now:
                return t
            chunk = bytes(b for _, b in self._wire[:n])
            del self._wire[:n]
            room = self.rxbuf + FIFO_LEN - len(self._ring)
            if room < n:
                self.dropped += n - max(room, 0)
                chunk = chunk[:max(room, 0)]
            self._ring += chunk
            self.bursts += 1

    # --- firmware side -------------------------------------------------------------
    def write(self, data):
        with self._cv:
            self._log(self.tx_log, data)
        if self.device is not None:
            self.device.on_uart_write(bytes(data))

    def any(self):
        with self._cv:
            self._advance(time.monotonic())
            return len(self._ring)

    def _take(self, n, until):
        r = self._ring
        k = min(n, len(r))
        if until is not None:
            i = r.find(bytes((until,)), 0, k)
            if i >= 0:
                k = i + 1
        out = bytes(r[:k])
        del r[:k]
        return out

    def read(self, n, timeout_ms, timeout_char_ms, until=None):
        """Up to n bytes: wait up to timeout_ms for the first, then take what the ring
        holds, waiting up to timeout_char_ms for each further chunk; stop at n bytes or
        after `until` (readline: on the board it reads byte by byte, each with
        `timeout`, so that wait applies between bytes here)."""
        out = bytearray()
        self.last_read = (timeout_ms, timeout_char_ms)  # as the vboard rounded them
        with self._cv:
            if not self._wait(time.monotonic() + timeout_ms / 1000.0):
                return b""
            gap = (timeout_ms if until is not None else timeout_char_ms) / 1000.0
            while len(out) < n:
                out += self._take(n - len(out), until)
                if len(out) >= n or (until is not None and out and out[-1] == until):
                    break
                if gap <= 0 or not self._wait(time.monotonic() + gap):
                    break
        return bytes(out)

    def _wait(self, limit):
        """Wait until the ring holds bytes or `limit` passes; True if it holds bytes."""
        while True:
            now = time.monotonic()
            nxt = self._advance(now)
            if self._ring:
                return True
            if now >= limit:
                return False
            wait = limit - now
            if nxt is not None:
                wait = min(wait, max(nxt - now, 0.0002))
            self._cv.wait(wait)

    def _log(self, log, data):
        log.append(bytes(data))
        if len(log) > self.log_limit:
            del log[: len(log) - self.log_limit]
