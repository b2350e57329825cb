# DS3231 battery-backed RTC on I2C (Maxim datasheet 19-5170): time in BCD registers
# 00h-06h (24-hour mode, century bit in the month register), and the oscillator-stop flag
# _OSF (status register 0Fh bit 7), set when the time stopped (first power-up, flat
# battery) and cleared by us only after setting a real time. Unix time is computed here
# with integer calendar arithmetic, so it is the same on the ESP32 (epoch 2000) and the
# unix port (epoch 1970).
from micropython import const

_REG_TIME = const(0x00)
_REG_STATUS = const(0x0F)
_OSF = const(0x80)


class DS3231Error(Exception):
    """The clock chip is missing or holds no valid time (the driver's exception family)."""


def days_from_civil(y, m, d):
    # H. Hinnant's algorithm: days since 1970-01-01 of a proleptic Gregorian date
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def civil_from_days(z):
    z += 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + (3 if mp < 10 else -9)
    return y + (m <= 2), m, d


def _bcd(v):
    return ((v // 10) << 4) | (v % 10)


def _unbcd(b, hi_mask=0x7F):
    b &= hi_mask
    lo, hi = b & 0x0F, b >> 4
    if lo > 9 or hi > 9:
        raise DS3231Error("register is not BCD: %02x" % b)
    return hi * 10 + lo


class DS3231:
    def __init__(self, i2c, addr=0x68):
        self.i2c = i2c
        self.addr = addr
        self._t = bytearray(7)
        self._w = bytearray(8)
        self._s = bytearray(1)

    def _read(self, reg, buf):
        try:
            self.i2c.readfrom_mem_into(self.addr, reg, buf)
        except OSError as e:
            raise DS3231Error("RTC: %s" % e)

    def _write(self, buf):
        try:
            self.i2c.writeto(self.addr, buf)
        except OSError as e:
            raise DS3231Error("RTC: %s" % e)

    def lost_power(self):
        """True while _OSF is set: the time cannot be trusted."""
        self._read(_REG_STATUS, self._s)
        return bool(self._s[0] & _OSF)

    def read_time(self):
        """Unix seconds the chip holds; DS3231Error if the registers are no valid time."""
        r = self._t
        self._read(_REG_TIME, r)
        sec = _unbcd(r[0])
        mi = _unbcd(r[1])
        if r[2] & 0x40:  # 12-hour mode (not set by us, but a chip may come so)
            h = _unbcd(r[2], 0x1F) % 12 + (12 if r[2] & 0x20 else 0)
        else:
            h = _unbcd(r[2], 0x3F)
        d = _unbcd(r[4], 0x3F)
        m = _unbcd(r[5], 0x1F)
        y = 2000 + _unbcd(r[6], 0xFF) + (100 if r[5] & 0x80 else 0)
        if sec > 59 or mi > 59 or h > 23 or not 1 <= d <= 31 or not 1 <= m <= 12:
            raise DS3231Error("registers hold no valid time")
        return days_from_civil(y, m, d) * 86400 + h * 3600 + mi * 60 + sec

    def now(self):
        """(unix seconds, trusted): trusted is False while _OSF is set."""
        lost = self.lost_power()
        return self.read_time(), not lost

    def set_time(self, unix):
        """Write the time (2000..2199) and clear _OSF: the time is now known."""
        days = unix // 86400
        rem = unix - days * 86400
        y, m, d = civil_from_days(days)
        if not 2000 <= y <= 2199:
            raise DS3231Error("year %d out of the chip's range" % y)
        wd = (days + 3) % 7 + 1  # 1 = Monday
        w = self._w
        w[0] = _REG_TIME
        w[1] = _bcd(rem % 60)
        w[2] = _bcd((rem // 60) % 60)
        w[3] = _bcd(rem // 3600)  # bit 6 clear: 24-hour mode
        w[4] = wd
        w[5] = _bcd(d)
        w[6] = _bcd(m) | (0x80 if y >= 2100 else 0)
        w[7] = _bcd(y % 100)
        self._write(w)
        self._read(_REG_STATUS, self._s)
        self._s[0] &= ~_OSF & 0xFF
        self._write(bytes((_REG_STATUS, self._s[0])))
