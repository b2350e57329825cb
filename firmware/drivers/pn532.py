# PN532 NFC controller driver (NXP UM0701-02), host side, for reading phones (ISO-DEP).
#
# Layering as in nfcpy: a transport moves bytes (HSU = UART at 115200, or I2C), the PN532
# class frames commands (00 00 FF LEN LCS D4 CMD … DCS 00), waits for the ACK and the
# answer, and turns every failure into a PN532Error subclass. The caller passes the bus
# in; all buffers are allocated once here; every wait is bounded by a deadline.
#
# The chip needs, in this order: wake-up (HSU: 0x55 then zeros), SAMConfiguration (it
# starts in LowVbat mode), then RFConfiguration MaxRetries with a small
# MxRtyPassiveActivation: the power-up value 0xFF makes InListPassiveTarget wait for a
# card forever, which would block the tap loop.
import time

from micropython import const

from drivers.pn532_link import (
    PN532Error, PN532FrameError, PN532Timeout, FrameReader, UartLink, ACK_FRAME, NACK_FRAME,
)

__all__ = ("PN532", "PN532Error", "PN532Timeout", "PN532FrameError", "PN532CommandError",
           "PN532TargetGone", "Target", "UartLink")

_CMD_GET_FIRMWARE_VERSION = const(0x02)
_CMD_SET_SERIAL_BAUD_RATE = const(0x10)
_CMD_SAM_CONFIGURATION = const(0x14)
_CMD_RF_CONFIGURATION = const(0x32)
_CMD_IN_DATA_EXCHANGE = const(0x40)
_CMD_IN_LIST_PASSIVE_TARGET = const(0x4A)
_CMD_IN_RELEASE = const(0x52)

_CFG_RF_FIELD = const(0x01)
_CFG_MAX_RETRIES = const(0x05)
_BRTY_106A = const(0x00)

_MAX_DATA = const(262)  # InDataExchange data limit, both directions

# HSU rates of SetSerialBaudRate, by code 0..8 (UM0701-02 §7.2.13); 115200 after power-up
BAUD_RATES = (9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600, 1288000)
POWER_ON_BAUD = const(115200)

# InDataExchange status codes (low 6 bits) meaning the phone is no longer there
_GONE = (0x01, 0x0A, 0x27, 0x29, 0x2A, 0x2B)
# ... the phone's answer did not fit: buffer size insufficient, RF buffer overflow (and
# the MI bit, which asks for chaining we do not do)
_TOO_LONG = (0x07, 0x09)
# ... the frame from or to the phone was garbled in the air: CRC, parity, bit count,
# framing, collision, RF protocol, DEP data format (UM0701-02 §7.1, error codes)
_AIR = (0x02, 0x03, 0x04, 0x05, 0x06, 0x0B, 0x13)
MI = const(0x40)


class PN532CommandError(PN532Error):
    """The chip answered with an error frame or a failing status byte."""

    def __init__(self, msg, status=0):
        super().__init__(msg)
        self.status = status


class PN532PhoneError(PN532CommandError):
    """The exchange with the phone failed and the reader is fine: its answer was too long
    (`too_long`: status 07/09 or the MI bit) or garbled in the air (CRC, parity, framing,
    collision, RF protocol). The tap fails; the reader stays in service."""

    def __init__(self, msg, status=0):
        super().__init__(msg, status)
        self.too_long = status in _TOO_LONG or status == MI


class PN532TargetGone(PN532Error):
    """The phone left the field (or never was there) during an exchange."""

    def __init__(self, msg, status=0):
        super().__init__(msg)
        self.status = status


class Target:
    """A card found by InListPassiveTarget (106 kbps type A)."""

    def __init__(self, tg, sens_res, sel_res, uid, ats):
        self.tg = tg
        self.sens_res = sens_res
        self.sel_res = sel_res
        self.uid = uid
        self.ats = ats

    def iso_dep(self):
        return bool(self.sel_res & 0x20)


class PN532:
    def __init__(self, link, ack_timeout_ms=40, timeout_ms=250, retries=2, fast_baud=None):
        self.link = link
        self.fast_baud = fast_baud  # HSU: switch to this rate in begin() (SetSerialBaudRate)
        self.ack_timeout_ms = ack_timeout_ms
        self.timeout_ms = timeout_ms
        self.retries = retries
        self._out = bytearray(9 + _MAX_DATA + 2)  # the largest extended frame we send
        self._outmv = memoryview(self._out)
        self._reader = FrameReader(link)
        self.target = None
        self.ready = False

    # --- frames ------------------------------------------------------------------------
    def _build(self, cmd, params, tg):
        n = 2 + len(params) + (0 if tg is None else 1)  # TFI + CMD [+ Tg] + params
        o = self._out
        if n > 255:
            o[0], o[1], o[2], o[3], o[4] = 0, 0, 0xFF, 0xFF, 0xFF
            o[5], o[6] = n >> 8, n & 0xFF
            o[7] = (-(o[5] + o[6])) & 0xFF
            i = 8
        else:
            o[0], o[1], o[2], o[3], o[4] = 0, 0, 0xFF, n, (-n) & 0xFF
            i = 5
        o[i] = 0xD4
        o[i + 1] = cmd
        s = 0xD4 + cmd
        j = i + 2
        if tg is not None:
            o[j] = tg
            s += tg
            j += 1
        for b in params:
            o[j] = b
            s += b
            j += 1
        o[j] = (-s) & 0xFF
        o[j + 1] = 0
        return j + 2

    def call(self, cmd, params=b"", timeout_ms=None, tg=None):
        """Send a command, wait for its ACK and answer; return a memoryview of the answer's
        data after D5 CMD+1 (valid until the next call). PN532Timeout has `acked` True
        when the chip took the command but did not answer in time."""
        if len(params) > _MAX_DATA + 2:
            raise PN532Error("command too long")
        n = self._build(cmd, params, tg)
        frame = self._outmv[:n]
        rd = self._reader
        link = self.link
        acked = False
        for _ in range(self.retries + 1):
            link.discard()
            link.send(frame)
            try:
                kind = rd.read(self.ack_timeout_ms)
            except PN532Timeout:
                continue  # the chip may have dropped a frame with a bad checksum
            except PN532FrameError:
                link.drain()
                continue  # a garbled ACK: send the command again
            if kind == rd.ACK:
                acked = True
                break
            if kind == rd.ERROR:
                raise PN532CommandError("error frame for command 0x%02x" % cmd)
            link.drain()  # NACK or a stray frame: send again
        if not acked:
            raise PN532Timeout("no ACK for command 0x%02x" % cmd)
        tmo = self.timeout_ms if timeout_ms is None else timeout_ms
        err = "no good answer"
        for attempt in range(self.retries + 1):
            try:
                kind = rd.read(tmo)
            except PN532Timeout:
                raise PN532Timeout("no answer to command 0x%02x in %d ms" % (cmd, tmo), True)
            except PN532FrameError as fe:
                err = str(fe)
                link.drain()
                if attempt < self.retries:
                    link.send(NACK_FRAME)  # ask the chip to send its answer again
                continue
            if kind == rd.ERROR:
                raise PN532CommandError("error frame for command 0x%02x" % cmd)
            if kind != rd.DATA:
                err = "unexpected ACK/NACK instead of an answer"
                if attempt < self.retries:
                    link.send(NACK_FRAME)
                continue
            data = rd.data()
            if len(data) < 2 or data[0] != 0xD5 or data[1] != cmd + 1:
                raise PN532FrameError("answer does not match command 0x%02x" % cmd)
            return data[2:]
        raise PN532FrameError(err)

    def abort(self):
        """An ACK from the host aborts the command the chip is working on."""
        self.link.send(ACK_FRAME)

    # --- setup -------------------------------------------------------------------------
    def begin(self, passive_retries=1):
        """Wake the chip, leave LowVbat mode, bound the polling; return the firmware
        version (ic, ver, rev, support). Safe to call again after a fault."""
        self.ready = False
        self.target = None
        if self.fast_baud and hasattr(self.link, "set_baud"):
            ver = self._begin_fast()
        else:
            ver = self._wake()
        self.set_passive_retries(passive_retries)
        self.ready = True
        return ver

    def _wake(self):
        self.link.wake()
        self.sam_configuration()
        return self.firmware_version()

    def _begin_fast(self):
        # The chip runs at 115200 after its power-up or a reset/glitch, at fast_baud while
        # it kept power across a reset of ours: try the link's rate, then the other.
        link = self.link
        try:
            ver = self._wake()
        except PN532Timeout:
            link.set_baud(POWER_ON_BAUD if link.baud != POWER_ON_BAUD else self.fast_baud)
            ver = self._wake()
        if link.baud != self.fast_baud:
            self.set_serial_baud(self.fast_baud)
            ver = self.firmware_version()  # and it answers at the new rate
        return ver

    def set_serial_baud(self, rate):
        """SetSerialBaudRate (UM0701-02 §7.2.13): the chip answers at the current rate
        and takes the new one once the host ACKs that answer; then the host switches."""
        code = -1
        for i in range(len(BAUD_RATES)):
            if BAUD_RATES[i] == rate:
                code = i
        if code < 0:
            raise ValueError("not a PN532 HSU rate")
        self.call(_CMD_SET_SERIAL_BAUD_RATE, bytes((code,)))
        self.link.send(ACK_FRAME)
        self.link.set_baud(rate)
        time.sleep_ms(1)  # let the chip's UART settle on the new rate

    def firmware_version(self):
        d = self.call(_CMD_GET_FIRMWARE_VERSION)
        if len(d) != 4:
            raise PN532FrameError("GetFirmwareVersion answer length")
        return (d[0], d[1], d[2], d[3])

    def sam_configuration(self, mode=1, timeout=0, irq=0):
        # mode 1 = normal (no SAM); timeout only matters in virtual-card mode
        self.call(_CMD_SAM_CONFIGURATION, bytes((mode, timeout, irq)))

    def set_passive_retries(self, n):
        """MxRtyATR default 0xFF, MxRtyPSL 0x01, MxRtyPassiveActivation n (0xFF = forever:
        never use that here)."""
        if not 0 <= n < 0xFF:
            raise ValueError("passive retries 0..254")
        self.call(_CMD_RF_CONFIGURATION, bytes((_CFG_MAX_RETRIES, 0xFF, 0x01, n)))

    def rf_field(self, on):
        self.call(_CMD_RF_CONFIGURATION, bytes((_CFG_RF_FIELD, 1 if on else 0)))

    # --- a tap ---------------------------------------------------------------------------
    def list_target(self, timeout_ms=None):
        """Poll once for an ISO 14443-A card; a Target or None. Bounded by the passive
        retries and by timeout_ms (after which the command is aborted)."""
        self.target = None
        try:
            d = self.call(_CMD_IN_LIST_PASSIVE_TARGET, b"\x01\x00", timeout_ms)
        except PN532Timeout as e:
            if not e.acked:
                raise
            self.abort()  # still polling past our deadline: stop it
            return None
        if len(d) < 1:
            raise PN532FrameError("InListPassiveTarget answer empty")
        if d[0] == 0:
            return None
        # Tg SENS_RES(2) SEL_RES NFCIDLength NFCID [ATS (TL first)]
        if len(d) < 6 or len(d) < 6 + d[5]:
            raise PN532FrameError("InListPassiveTarget answer truncated")
        n = d[5]
        uid = bytes(d[6:6 + n])
        ats = b""
        rest = d[6 + n:]
        if len(rest):
            tl = rest[0]
            if tl < 1 or tl > len(rest):
                raise PN532FrameError("ATS length")
            ats = bytes(rest[:tl])
        self.target = Target(d[1], bytes(d[2:4]), d[4], uid, ats)
        return self.target

    def exchange(self, apdu, timeout_ms=None):
        """Send an APDU to the listed phone; a memoryview of its answer (valid until the
        next call). PN532TargetGone when it left."""
        t = self.target
        if t is None:
            raise PN532TargetGone("no target listed")
        if len(apdu) > _MAX_DATA:
            raise PN532Error("APDU over %d bytes" % _MAX_DATA)
        try:
            d = self.call(_CMD_IN_DATA_EXCHANGE, apdu, timeout_ms, t.tg)
        except PN532Timeout as e:
            if e.acked:
                self.abort()
                self.target = None
                raise PN532TargetGone("no answer from the phone")
            raise
        if len(d) < 1:
            raise PN532FrameError("InDataExchange answer empty")
        st = d[0] & 0x3F
        if st:
            if st in _GONE:
                self.target = None
                raise PN532TargetGone("phone left (status 0x%02x)" % st, st)
            if st in _TOO_LONG or st in _AIR:
                raise PN532PhoneError("InDataExchange status 0x%02x" % st, st)
            raise PN532CommandError("InDataExchange status 0x%02x" % st, st)
        if d[0] & MI:
            raise PN532PhoneError("answer needs chaining (MI): too long", MI)
        return d[1:]

    def release(self):
        if self.target is not None:
            self.target = None
            try:
                self.call(_CMD_IN_RELEASE, b"\x00")
            except PN532Error:
                pass

