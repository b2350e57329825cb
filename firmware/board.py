# The one board file: the reference board's pin map and the function that builds the
# drivers on it. The board is an ESP32-S3-WROOM-1-N16R8 (octal PSRAM; DESIGN §2) on the
# stock ESP32_GENERIC_S3 image, variant SPIRAM_OCT, wired as docs/drivers.md shows.
# Nothing touches hardware at import time: build() creates the buses and drivers,
# Board.start() talks to the chips. The simulator's device host (sim/devhost/host.py) is
# wired with the same numbers.
#
# Pins: only numbers in the S3 pin table with octal PSRAM (ports/esp32/machine_pin.h:
# GPIO 0-21 and 38-46; 22-25 do not exist, 26-37 are the flash's and the PSRAM's);
# machine.Pin refuses any other with ValueError("invalid pin"), and so does the
# simulator. Also kept free: 0, 3, 45, 46 (strapping pins), 19/20 (native USB, the depot
# cable and the REPL), 43/44 (UART0, the stock build's second REPL).
from micropython import const

# PN532 in HSU mode on UART1 (TX/RX), or on the I2C bus at 0x24 (second wiring)
NFC_BUS = "hsu"
PN532_UART = const(1)
PN532_TX = const(17)
PN532_RX = const(18)
PN532_BAUD = const(115200)       # the chip's HSU rate after power-up or a reset
PN532_FAST_BAUD = const(460800)  # switched by SetSerialBaudRate (UM0701-02 §7.2.13)
PN532_ADDR = const(0x24)

# GM65 QR scanner on UART2: 9600 baud as shipped, switched to 115200 (and saved) by the
# driver the first time it finds the module still at 9600
QR_UART = const(2)
QR_TX = const(15)
QR_RX = const(16)
QR_BAUD = const(115200)
QR_SHIPPED_BAUD = const(9600)
QR_MAX_LINE = const(773)  # the longest QR text the token format allows (docs/tokens.md)

# one I2C bus: SSD1306 OLED and DS3231 RTC (the S3 build's default I2C0 pins)
I2C_ID = const(0)
I2C_SCL = const(9)
I2C_SDA = const(8)
I2C_FREQ = const(400000)
OLED_ADDR = const(0x3C)
RTC_ADDR = const(0x68)

PIN_GREEN = const(4)
PIN_RED = const(5)
PIN_BUZZER = const(6)


class Board:
    """The drivers of one validator. Attributes: nfc (PN532), qr (GM65), display
    (SSD1306), rtc (DS3231), signals (Signals), i2c."""

    def __init__(self, nfc, qr, display, rtc, signals, i2c):
        self.nfc = nfc
        self.qr = qr
        self.display = display
        self.rtc = rtc
        self.signals = signals
        self.i2c = i2c

    def start(self):
        """Bring every part up; returns [(name, ok, detail)] — a part that fails is
        reported, not raised, so the validator can still say what is wrong."""
        out = []
        for name, fn in (("display", self.display.init_display),
                         ("nfc", self.nfc.begin),
                         ("qr", self.qr.configure),
                         ("rtc", self.rtc.now)):
            try:
                r = fn()
                if name == "qr":
                    r = (self.qr.baud, self.qr.found_baud)
                elif name == "nfc":
                    r = r + (getattr(self.nfc.link, "baud", 0),)
                out.append((name, True, _detail(name, r)))
            except Exception as e:  # noqa: BLE001 - each driver raises its own family
                out.append((name, False, "%s: %s" % (type(e).__name__, e)))
        try:
            self.signals.off()
        except OSError as e:
            out.append(("signals", False, str(e)))
        return out


def _detail(name, r):
    if name == "nfc":
        return "PN5%02x v%d.%d" % (r[0], r[1], r[2]) + (" %d baud" % r[4] if r[4] else "")
    if name == "qr":
        if r[0] and r[1] and r[1] != r[0]:
            return "%d baud (found at %d: switched and saved)" % r
        return "%d baud" % r[0] if r[0] else "ok"
    if name == "rtc":
        return "time %d%s" % (r[0], "" if r[1] else " (unset: oscillator stopped)")
    return "ok"


def build(nfc_bus=None):
    """Create the buses and drivers of the reference board (no chip is talked to)."""
    import machine

    from drivers.ds3231 import DS3231
    from drivers.gm65 import GM65
    from drivers.pn532 import PN532, UartLink
    from drivers.signals import Signals
    from drivers.ssd1306 import SSD1306

    i2c = machine.I2C(I2C_ID, scl=machine.Pin(I2C_SCL), sda=machine.Pin(I2C_SDA),
                      freq=I2C_FREQ)
    if (nfc_bus or NFC_BUS) == "i2c":
        from drivers.pn532_i2c import I2CLink
        nfc = PN532(I2CLink(i2c, PN532_ADDR))
    else:
        # short UART timeouts: the driver's own deadlines bound every wait
        nfc = PN532(UartLink(machine.UART(PN532_UART, PN532_BAUD, tx=PN532_TX, rx=PN532_RX,
                                          timeout=10, timeout_char=3, rxbuf=512),
                             PN532_BAUD), fast_baud=PN532_FAST_BAUD)
    # timeout_char=0: shorter than one character, so the ESP32 port sets the RX FIFO
    # threshold to 1 and each byte reaches the ring buffer as it arrives
    # (machine_uart.c); with the default threshold (120) a scan at 9600 baud would come
    # in 125 ms bursts (at 115200 ~10 ms apart). rxbuf holds a whole 773-character scan.
    qr = GM65(machine.UART(QR_UART, QR_BAUD, tx=QR_TX, rx=QR_RX, timeout=10,
                           timeout_char=0, rxbuf=1024), max_line=QR_MAX_LINE,
              baud=QR_BAUD, fast_baud=QR_BAUD)
    signals = Signals(machine.Pin(PIN_GREEN, machine.Pin.OUT, value=0),
                      machine.Pin(PIN_RED, machine.Pin.OUT, value=0),
                      machine.PWM(machine.Pin(PIN_BUZZER), freq=2700, duty_u16=0))
    global _board
    b = Board(nfc, qr, SSD1306(i2c, OLED_ADDR), DS3231(i2c, RTC_ADDR), signals, i2c)
    if _board is None:
        _board = b  # get() (selftest, set_time) shares it instead of a second set of buffers
    return b


_board = None


def get():
    """The board, built on first use."""
    global _board
    if _board is None:
        _board = build()
    return _board


def selftest():
    """[(name, ok, detail)] for nfc, qr, display, rtc (used by maint_selftest)."""
    return get().start()


def set_time(unix):
    """Set the DS3231 (and clear its oscillator-stop flag)."""
    get().rtc.set_time(unix)
