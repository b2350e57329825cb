"""A virtual PN532 (NXP UM0701-02) that speaks the chip's frames on HSU (UART) or I2C.

What it does as the chip does:
- HSU wake-up: after power-up (and PowerDown) the chip ignores the line until it sees
  0x55 (the wake-up byte); hosts send 55 55 00 00 00 … before the first command.
- Frames: 00 00 FF LEN LCS D4 CMD … DCS 00 (and the extended form 00 00 FF FF FF LENM
  LENL LCS …). A frame with a wrong LCS or DCS is dropped without an ACK. Every good
  command is ACKed (00 00 FF 00 FF 00) and answered with D5 CMD+1 …; a host NACK
  (00 00 FF FF 00 00) asks for the last answer again; a host ACK aborts a pending
  command. Unknown commands get the error frame 00 00 FF 01 FF 7F 81 00.
- SAMConfiguration must come first (the chip starts in LowVbat mode): before it, RF
  commands get the error frame (model choice, documented in docs/simulator.md).
- RFConfiguration item 5 (MaxRetries): MxRtyPassiveActivation bounds how often
  InListPassiveTarget polls for a card; the power-up default 0xFF waits forever.
- InListPassiveTarget 106 kbps type A: NbTg, Tg, SENS_RES, SEL_RES, NFCID1, ATS (the
  chip does RATS itself when SEL_RES says ISO-DEP).
- InDataExchange: status byte (0x00 ok, 0x01 target did not answer, 0x27 no such
  target, 0x07 answer too large for the chip's buffer) + the card's answer.

- SetSerialBaudRate (UM0701-02 §7.2.13): D4 10 BR, BR 00..08 = 9600, 19200, 38400,
  57600, 115200, 230400, 460800, 921600, 1288000 baud. The chip ACKs and answers D5 11
  at the current rate, and switches to the new rate once the host has sent an ACK frame
  (at the current rate). A power-up (or reset) starts at 115200. While the host's UART
  runs at another rate than the chip, neither understands the other: the chip ignores
  the bytes and the host reads garbage.

Faults for tests (control API `pn532.fault`): "bad_dcs", "bad_lcs", "nack" (answer with a
NACK frame), "error_frame", "garbage" (noise before the next frame), "truncate", "no_ack",
"no_response"; "air_crc" (the next InDataExchange reports status 02: the phone's frame
arrived with a bad CRC); `silent = True` makes the chip answer nothing at all.
"""

import queue
import threading
import time

from .rf import CardGone

ACK = bytes.fromhex("0000ff00ff00")
NACK = bytes.fromhex("0000ffff0000")
ERROR_FRAME = bytes.fromhex("0000ff01ff7f8100")

FIRMWARE_VERSION = bytes((0x32, 0x01, 0x06, 0x07))  # IC PN532, v1.6, ISO A/B + 18092
ATTEMPT_S = 0.004  # modelled time of one passive activation attempt with no card
MAX_DATA_IN = 262  # InDataExchange answer limit (UM0701-02 §7.3.8)
POWER_ON_BAUD = 115200  # HSU rate after power-up/reset (UM0701-02 §6.2.3)
BAUD_RATES = (9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600, 1288000)


def frame(payload):
    """A normal (or extended, above 255 bytes) information frame around TFI+data."""
    n = len(payload)
    dcs = (-sum(payload)) & 0xFF
    if n <= 255:
        return bytes((0, 0, 0xFF, n, (-n) & 0xFF)) + bytes(payload) + bytes((dcs, 0))
    hi, lo = n >> 8, n & 0xFF
    return bytes((0, 0, 0xFF, 0xFF, 0xFF, hi, lo, (-(hi + lo)) & 0xFF)) + bytes(payload) + \
        bytes((dcs, 0))


class VirtualPN532:
    def __init__(self, antenna):
        self.antenna = antenna
        self.uart = None  # set by VirtualUart.attach (HSU wiring)
        self.i2c_mode = False
        self._i2c_out = []  # [(ready time, frame)] for the I2C transport
        self._buf = bytearray()
        self._lock = threading.RLock()
        self._queue = queue.Queue()
        self._worker = None
        self.silent = False
        self.faults = []
        self.errors = []  # exceptions inside the model (a bug: tests assert it stays empty)
        self.commands = []  # (cmd, data) received, for tests and the UI
        self.power_on()
        antenna.listeners.append(self._card_arrived)

    def power_on(self):
        with self._lock:
            self.awake = False
            self.sam = False
            self.mx_rty_passive = 0xFF
            self.rf_on = True
            self.baud = POWER_ON_BAUD
            self.baud_pending = None  # SetSerialBaudRate answered, waiting for the ACK
            self.target = None  # (tg, card)
            self._last = None
            self._pending = None
            self._buf = bytearray()
            self._i2c_out = []
            self.faults = []

    # --- transports --------------------------------------------------------------------
    # Bytes from the host are handled on the chip's own thread, so a bus write returns at
    # once as on real hardware even while the RF side is slow (nfcpy, a real phone).
    def _post(self, fn, data):
        with self._lock:
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="pn532",
                                                daemon=True)
                self._worker.start()
        self._queue.put((fn, data))

    def _work(self):
        while True:
            fn, data = self._queue.get()
            try:
                with self._lock:
                    fn(data)
            except Exception as e:  # noqa: BLE001 - a model bug must not silence the chip
                self.errors.append(repr(e))
            finally:
                self._queue.task_done()

    def idle(self, timeout=5.0):
        """Wait until every byte written so far has been processed (tests, benches)."""
        t_end = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < t_end:
            time.sleep(0.001)

    def on_uart_write(self, data):
        # the rates are compared when the bytes are on the wire (the host may re-init its
        # UART before the chip's thread gets to them)
        if not self._wire_ok():
            return  # at another baud rate the chip samples noise: nothing it can parse
        self._post(self._hsu_bytes, data)

    def _wire_ok(self):
        return self.uart is None or not self.uart.baudrate or self.uart.baudrate == self.baud

    def _hsu_bytes(self, data):
        if self.silent:
            return
        if not self.awake:
            i = data.find(b"\x55")
            if i < 0:
                return
            self.awake = True
            data = data[i:]
        self._buf += data
        self._parse()

    def i2c_write(self, data, stop=True):
        with self._lock:
            self.i2c_mode = True
        self._post(self._i2c_bytes, data)

    def _i2c_bytes(self, data):
        self.awake = True  # I2C wakes the chip on its address match
        if self.silent:
            return
        self._buf += data
        self._parse()

    def i2c_read(self, n):
        with self._lock:
            now = time.monotonic()
            if self._i2c_out and self._i2c_out[0][0] <= now and not self.silent:
                # a 1-byte read is the host polling the ready byte; a longer read
                # takes the frame (the next read starts with the next frame)
                f = self._i2c_out[0][1] if n <= 1 else self._i2c_out.pop(0)[1]
                out = b"\x01" + f
            else:
                out = b"\x00"
            return (out + bytes(n))[:n]

    def _emit(self, data, delay=0.0):
        if self.i2c_mode:
            self._i2c_out.append((time.monotonic() + delay, bytes(data)))
        elif self.uart is not None:
            if not self._wire_ok():
                data = bytes((b ^ 0x5A) | 0x80 for b in data)  # the host samples garbage
            self.uart.deliver(data, delay)

    # --- framing -----------------------------------------------------------------------
    def _parse(self):
        buf = self._buf
        while True:
            # drop wake-up bytes, preamble zeros and noise up to a start code 00 FF
            i = buf.find(b"\x00\xff")
            if i < 0:
                del buf[: max(len(buf) - 1, 0)]
                return
            del buf[:i]
            if len(buf) < 4:
                return
            if buf[2:4] == b"\x00\xff" and len(buf) >= 5:  # host ACK: abort
                del buf[:5]
                self._pending = None
                if self.baud_pending:  # SetSerialBaudRate: the new rate from now on
                    self.baud, self.baud_pending = self.baud_pending, None
                continue
            if buf[2:4] == b"\xff\x00" and len(buf) >= 5:  # host NACK: send last again
                del buf[:5]
                if self._last is not None:
                    self._send_answer(self._last)
                continue
            if buf[2] == 0xFF and buf[3] == 0xFF:  # extended frame
                if len(buf) < 7:
                    return
                n = (buf[4] << 8) | buf[5]
                if (buf[4] + buf[5] + buf[6]) & 0xFF or n > 265:
                    del buf[:2]  # bad LCS, or longer than the chip's 265-byte buffer
                    continue
                head = 7
            else:
                n = buf[2]
                if (buf[2] + buf[3]) & 0xFF:  # LCS wrong: not a frame, resync
                    del buf[:2]
                    continue
                head = 4
            if len(buf) < head + n + 1:
                return
            payload = bytes(buf[head: head + n])
            dcs = buf[head + n]
            del buf[: head + n + 1]
            if (sum(payload) + dcs) & 0xFF or n < 2 or payload[0] != 0xD4:
                continue  # bad checksum or not for us: dropped, no ACK
            self._command(payload[1], payload[2:])

    def _answer(self, data, delay=0.0):
        f = frame(b"\xd5" + bytes(data))
        # a NACK gets the answer again as the chip built it: faults are on the wire
        self._last = f
        self._send_answer(f, delay)

    def _send_answer(self, f, delay=0.0):
        # "air_crc" waits for the next InDataExchange (an RF fault, not a wire fault)
        fault = self.faults.pop(0) if self.faults and self.faults[0] != "air_crc" else None
        if fault == "bad_dcs":
            f = f[:-2] + bytes(((f[-2] + 1) & 0xFF, 0))
        elif fault == "bad_lcs":
            f = f[:4] + bytes(((f[4] + 1) & 0xFF,)) + f[5:]
        elif fault == "nack":
            f = NACK
        elif fault == "error_frame":
            f = ERROR_FRAME
        elif fault == "garbage":
            f = b"\x13\x37\xff\x00\x42" + f
        elif fault == "truncate":
            f = f[: len(f) // 2]
        elif fault == "no_response":
            return
        self._emit(f, delay)

    # --- commands ----------------------------------------------------------------------
    def _command(self, cmd, data):
        self.commands.append((cmd, bytes(data)))
        if self.faults and self.faults[0] == "no_ack":
            self.faults.pop(0)
            return
        self._emit(ACK)
        handler = _HANDLERS.get(cmd)
        if handler is None:
            self._last = ERROR_FRAME
            self._emit(ERROR_FRAME)
            return
        if cmd not in (0x02, 0x10, 0x14, 0x16) and not self.sam:
            self._last = ERROR_FRAME
            self._emit(ERROR_FRAME)
            return
        handler(self, data)

    def _get_firmware_version(self, data):
        self._answer(b"\x03" + FIRMWARE_VERSION)

    def _set_serial_baud_rate(self, data):
        if len(data) != 1 or data[0] >= len(BAUD_RATES):
            self._last = ERROR_FRAME
            self._emit(ERROR_FRAME)  # syntax error: not a rate of the table
            return
        self._answer(b"\x11")
        self.baud_pending = BAUD_RATES[data[0]]

    def _sam_configuration(self, data):
        if len(data) < 1 or data[0] not in (1, 2, 3, 4):
            self._emit(ERROR_FRAME)
            return
        self.sam = True
        self._answer(b"\x15")

    def _power_down(self, data):
        self._answer(b"\x17\x00")
        self.awake = False

    def _rf_configuration(self, data):
        if not data:
            self._emit(ERROR_FRAME)
            return
        item = data[0]
        if item == 0x01 and len(data) >= 2:
            self.rf_on = bool(data[1] & 1)
            if not self.rf_on:
                self.target = None
        elif item == 0x05 and len(data) >= 4:
            self.mx_rty_passive = data[3]
        self._answer(b"\x33")

    def _in_list_passive_target(self, data):
        if len(data) < 2 or data[0] not in (1, 2):
            self._emit(ERROR_FRAME)
            return
        card = self.antenna.activate() if (self.rf_on and data[1] == 0x00) else None
        if card is not None:
            self._answer(self._target_data(card))
            return
        if self.mx_rty_passive == 0xFF and data[1] == 0x00 and self.rf_on:
            self._pending = "inlist"  # waits for a card, as the real chip does
            return
        self._answer(b"\x4b\x00", delay=ATTEMPT_S * (self.mx_rty_passive + 1))

    def _target_data(self, card):
        self.target = (1, card)
        out = bytearray(b"\x4b\x01\x01")
        out += card.sens_res + bytes((card.sel_res, len(card.uid))) + card.uid
        if card.sel_res & 0x20:
            out += card.ats
        return bytes(out)

    def _card_arrived(self):
        with self._lock:
            if self._pending == "inlist":
                card = self.antenna.activate()
                if card is not None:
                    self._pending = None
                    self._answer(self._target_data(card))

    def _in_data_exchange(self, data):
        if not data:
            self._emit(ERROR_FRAME)
            return
        tg = data[0] & 0x0F
        if self.target is None or self.target[0] != tg:
            self._answer(b"\x41\x27")
            return
        if self.faults and self.faults[0] == "air_crc":
            self.faults.pop(0)
            self._answer(b"\x41\x02")
            return
        try:
            rsp = self.antenna.exchange(self.target[1], data[1:])
        except CardGone:
            self.target = None
            # the chip waits for the card's frame waiting time, then reports a timeout
            self._answer(b"\x41\x01", delay=0.05)
            return
        if len(rsp) > MAX_DATA_IN:
            self._answer(b"\x41\x07")
            return
        self._answer(b"\x41\x00" + rsp)

    def _in_release(self, data):
        self.target = None
        self._answer(b"\x53\x00")

    def _in_deselect(self, data):
        self._answer(b"\x45\x00")


_HANDLERS = {
    0x02: VirtualPN532._get_firmware_version,
    0x10: VirtualPN532._set_serial_baud_rate,
    0x14: VirtualPN532._sam_configuration,
    0x16: VirtualPN532._power_down,
    0x32: VirtualPN532._rf_configuration,
    0x4A: VirtualPN532._in_list_passive_target,
    0x40: VirtualPN532._in_data_exchange,
    0x52: VirtualPN532._in_release,
    0x44: VirtualPN532._in_deselect,
}
