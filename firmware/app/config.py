# Device configuration: /data/config.json, schema in docs/ARCHITECTURE.md ('config.json').
#
# Written by provisioning and by config bundles, read once at boot. Every field is
# validated and unknown keys are refused: a typo in a depot's config must stop the
# validator with a clear reason at boot, not silently fall back to a default at the door.
import json

from micropython import const

VERSION = const(1)
_MAX_BYTES = const(4096)  # a config is a few hundred bytes; refuse to json-load more

DEFAULTS = {
    "bus": "",
    "route": "",
    "wifi": None,
    "depot_url": None,
    "qr_window_s": 30,
    "passback_s": 60,
    "locked": False,
}
REQUIRED = ("v", "device_id", "operator", "operator_key")
_HEX = "0123456789abcdef"


class ConfigError(Exception):
    """Config refused; .field names the offending key, .why says what is wrong."""

    def __init__(self, field, why):
        field = _printable(field)
        super().__init__("config %s: %s" % (field, why))
        self.field = field
        self.why = why


def _printable(s):
    # a field name may come from the file itself (an unknown key): keep the one-line
    # message one line and short
    s = str(s)
    out = ""
    for ch in s[:32]:
        out += ch if 0x20 <= ord(ch) <= 0x7E else "?"
    return out


def _text(d, key, lo, hi):
    v = d[key]
    if not isinstance(v, str):
        raise ConfigError(key, "must be text")
    if not lo <= len(v) <= hi:
        raise ConfigError(key, "length must be %d..%d" % (lo, hi))
    for ch in v:
        if ord(ch) < 0x20 or ord(ch) > 0x7E:
            raise ConfigError(key, "must be printable ASCII")
    return v


def _int(d, key, lo, hi):
    v = d[key]
    # bool is an int subclass in CPython; refuse it explicitly on every port
    if v is True or v is False or not isinstance(v, int):
        raise ConfigError(key, "must be an integer")
    if not lo <= v <= hi:
        raise ConfigError(key, "must be %d..%d" % (lo, hi))
    return v


def _hex(d, key, nbytes_lo, nbytes_hi):
    v = d[key]
    if not isinstance(v, str) or len(v) % 2:
        raise ConfigError(key, "must be hex text of whole bytes")
    for ch in v:
        if ch not in _HEX:
            raise ConfigError(key, "must be lowercase hex")
    if not nbytes_lo <= len(v) // 2 <= nbytes_hi:
        raise ConfigError(key, "must be %d..%d bytes" % (nbytes_lo, nbytes_hi))
    return v


class Config:
    """A validated config; attributes named as the JSON keys."""

    bundle_error = None  # why an installed config bundle was left out (app/state.py)
    base_link = None     # config.json's (wifi, depot_url) when a bundle changed them

    def __init__(self, d):
        self.v = d["v"]
        self.device_id = d["device_id"]
        self.operator = d["operator"]
        self.bus = d["bus"]
        self.route = d["route"]
        self.wifi = d["wifi"]
        self.depot_url = d["depot_url"]
        self.operator_key = d["operator_key"]
        self.qr_window_s = d["qr_window_s"]
        self.passback_s = d["passback_s"]
        self.locked = d["locked"]

    def operator_key_bytes(self):
        return bytes(int(self.operator_key[i:i + 2], 16)
                     for i in range(0, len(self.operator_key), 2))

    def to_dict(self):
        return {"v": self.v, "device_id": self.device_id, "operator": self.operator,
                "bus": self.bus, "route": self.route, "wifi": self.wifi,
                "depot_url": self.depot_url, "operator_key": self.operator_key,
                "qr_window_s": self.qr_window_s, "passback_s": self.passback_s,
                "locked": self.locked}


def validate(d):
    """Check a decoded config.json; return a Config or raise ConfigError."""
    if not isinstance(d, dict):
        raise ConfigError("(root)", "must be a JSON object")
    for k in d:
        if k not in REQUIRED and k not in DEFAULTS:
            raise ConfigError(k, "unknown key")
    for k in REQUIRED:
        if k not in d:
            raise ConfigError(k, "missing")
    full = dict(DEFAULTS)
    full.update(d)
    v = full["v"]
    if v is True or v is False or v != VERSION:
        raise ConfigError("v", "unsupported version (this firmware reads %d)" % VERSION)
    _hex(full, "device_id", 4, 16)
    _text(full, "operator", 1, 8)
    _text(full, "bus", 0, 16)
    _text(full, "route", 0, 16)
    _hex(full, "operator_key", 65, 65)
    if not str(full["operator_key"]).startswith("04"):
        raise ConfigError("operator_key", "must be an uncompressed P-256 point (04...)")
    for k in BUNDLE_KEYS:
        _check(full, k)
    if full["locked"] is not True and full["locked"] is not False:
        raise ConfigError("locked", "must be true or false")
    return Config(full)


# What a config bundle may change, each within the range docs/bundles.md documents (the
# bundle builder host/bundles.py checks the same ranges): a value outside is refused when
# the bundle is installed, so it can never stop the validator at its next boot.
BUNDLE_KEYS = ("qr_window_s", "passback_s", "wifi", "depot_url")
QR_WINDOW = (5, 300)
PASSBACK = (0, 3600)


def check_changes(changes):
    """Check a config bundle's body (a dict of changes); ConfigError if a key may not be
    changed by a bundle or a value is out of its range."""
    if not isinstance(changes, dict) or not changes:
        raise ConfigError("(bundle)", "must be a non-empty map")
    for k in changes:
        if k not in BUNDLE_KEYS:
            raise ConfigError("(bundle)." + _printable(k), "may not be changed by bundle")
        if changes[k] is None:  # a bundle that removed the depot link would end all syncs
            raise ConfigError(k, "a bundle may change it, not remove it")
        _check(changes, k)


def _check(full, key):
    if key == "qr_window_s":
        _int(full, key, QR_WINDOW[0], QR_WINDOW[1])
    elif key == "passback_s":
        _int(full, key, PASSBACK[0], PASSBACK[1])
    elif key == "wifi":
        _wifi(full["wifi"])
    elif key == "depot_url":
        _url(full["depot_url"])


def _wifi(wifi):
    if wifi is not None:
        if not isinstance(wifi, dict):
            raise ConfigError("wifi", "must be an object or null")
        for k in wifi:
            if k not in ("ssid", "psk"):
                raise ConfigError("wifi." + k, "unknown key")
        if "ssid" not in wifi:
            raise ConfigError("wifi.ssid", "missing")
        _text(wifi, "ssid", 1, 32)
        if "psk" in wifi:
            psk = _text(wifi, "psk", 0, 63)
            if 0 < len(psk) < 8:
                raise ConfigError("wifi.psk", "WPA2 passphrase must be 8..63 characters")


def _url(url):
    if url is not None:
        _text({"depot_url": url}, "depot_url", 8, 128)
        if not str(url).startswith("http://"):
            raise ConfigError("depot_url", "must start with http://")


def parse(text):
    """Parse config.json text (str or bytes) into a Config or raise ConfigError."""
    if len(text) > _MAX_BYTES:
        raise ConfigError("(file)", "larger than %d bytes" % _MAX_BYTES)
    try:
        d = json.loads(text)
    except (ValueError, UnicodeError):
        raise ConfigError("(file)", "not valid JSON")
    return validate(d)


def load(path):
    """Read and validate a config file; ConfigError if missing or invalid."""
    try:
        with open(path, "rb") as f:
            text = f.read(_MAX_BYTES + 1)
    except OSError:
        raise ConfigError("(file)", "cannot read " + path)
    return parse(text)
