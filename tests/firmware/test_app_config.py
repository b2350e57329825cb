# config.json validation under MicroPython: the schema of docs/ARCHITECTURE.md, unknown keys
# refused, every field checked, errors typed with the field that is wrong.
import json

from app import config

KEY = "04" + "ab" * 64
GOOD = {"v": 1, "device_id": "a1b2c3d4e5f6", "operator": "TSM", "bus": "B-017",
        "route": "K1", "wifi": {"ssid": "depot", "psk": "secret-psk"},
        "depot_url": "http://10.0.0.1:8080", "operator_key": KEY,
        "qr_window_s": 30, "passback_s": 60, "locked": False}


def _refused(d, field):
    try:
        config.validate(d)
    except config.ConfigError as e:
        assert e.field == field, (e.field, field, e.why)
        return
    raise AssertionError("accepted %r" % (d,))


def _with(**kw):
    d = dict(GOOD)
    d.update(kw)
    return d


def test_good_config_and_defaults():
    c = config.parse(json.dumps(GOOD))
    assert c.operator == "TSM" and c.passback_s == 60 and c.qr_window_s == 30
    assert c.operator_key_bytes()[0] == 4 and len(c.operator_key_bytes()) == 65
    assert c.to_dict() == GOOD
    minimal = {"v": 1, "device_id": "a1b2c3d4", "operator": "TSM", "operator_key": KEY}
    m = config.validate(minimal)
    assert m.passback_s == 60 and m.wifi is None and m.locked is False


def test_each_field_is_checked():
    _refused(_with(v=2), "v")
    _refused(_with(v=True), "v")
    _refused(_with(device_id="XYZ"), "device_id")
    _refused(_with(device_id="ab"), "device_id")
    _refused(_with(operator=""), "operator")
    _refused(_with(operator=7), "operator")
    _refused(_with(bus="x" * 17), "bus")
    _refused(_with(route="\n"), "route")
    _refused(_with(operator_key="05" + "ab" * 64), "operator_key")
    _refused(_with(operator_key=KEY[:-2]), "operator_key")
    _refused(_with(qr_window_s=1), "qr_window_s")
    _refused(_with(qr_window_s="30"), "qr_window_s")
    _refused(_with(passback_s=-1), "passback_s")
    _refused(_with(passback_s=False), "passback_s")
    _refused(_with(locked=0), "locked")
    _refused(_with(wifi=[]), "wifi")
    _refused(_with(wifi={"ssid": "d", "psk": "short"}), "wifi.psk")
    _refused(_with(wifi={"psk": "longenough"}), "wifi.ssid")
    _refused(_with(wifi={"ssid": "d", "x": 1}), "wifi.x")
    _refused(_with(depot_url="ftp://x.example"), "depot_url")
    _refused(_with(colour="red"), "colour")
    d = dict(GOOD)
    del d["operator"]
    _refused(d, "operator")
    _refused([1], "(root)")


def test_bad_files_give_typed_errors():
    for text in ("", "{", "not json", "[]", '{"v": 1}', "x" * 5000, b"\xff\xfe"):
        try:
            config.parse(text)
        except config.ConfigError:
            continue
        raise AssertionError("accepted %r" % (text,))
    try:
        config.load("/nonexistent/config.json")
        raise AssertionError("loaded a missing file")
    except config.ConfigError as e:
        assert e.field == "(file)"
