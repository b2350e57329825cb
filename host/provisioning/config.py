"""Building and checking the device config before anything is written to a board.

The rules are the firmware's own: firmware/app/config.py (the validator the validator
runs at boot) is loaded here under CPython, so host and device cannot disagree about what
a valid config.json is. Bundles (trust list, fare table) are checked against the operator
key with host/bundles.py before they are sent.
"""

import importlib.util
import json
import pathlib
import sys
import types

from host import bundles

from .errors import BadConfig

ROOT = pathlib.Path(__file__).resolve().parents[2]
FW_CONFIG = ROOT / "firmware" / "app" / "config.py"
SITE_KEYS = {"operator", "operator_key", "wifi", "depot_url", "qr_window_s", "passback_s",
             "trust", "fares", "registry"}
_fw = None


def firmware_rules():
    """firmware/app/config.py as a CPython module (MicroPython's `const` is the identity)."""
    global _fw
    if _fw is None:
        shim = types.ModuleType("micropython")
        shim.const = lambda x: x
        saved = sys.modules.get("micropython")
        sys.modules["micropython"] = shim
        try:
            spec = importlib.util.spec_from_file_location("_brt_fw_config", FW_CONFIG)
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
        finally:
            if saved is None:
                sys.modules.pop("micropython", None)
            else:
                sys.modules["micropython"] = saved
        _fw = mod
    return _fw


def load_site(path):
    """The depot's settings file (JSON): what every validator of this depot shares."""
    try:
        site = json.loads(pathlib.Path(path).read_text())
    except OSError as e:
        raise BadConfig("cannot read site file %s: %s" % (path, e.strerror)) from None
    except ValueError as e:
        raise BadConfig("site file %s is not valid JSON: %s" % (path, e)) from None
    if not isinstance(site, dict):
        raise BadConfig("site file %s: must be a JSON object" % path)
    unknown = sorted(set(site) - SITE_KEYS)
    if unknown:
        raise BadConfig("site file %s: unknown key %s" % (path, unknown[0]))
    base = pathlib.Path(path).resolve().parent
    for k in ("trust", "fares"):
        if isinstance(site.get(k), str):
            site[k] = str(base / site[k])
    return site


def build(site, device_id, bus, route):
    """The config.json text for one validator, validated by the firmware's rules."""
    d = {"v": 1, "device_id": device_id, "operator": site.get("operator"),
         "bus": bus, "route": route, "wifi": site.get("wifi"),
         "depot_url": site.get("depot_url"), "operator_key": site.get("operator_key"),
         "qr_window_s": site.get("qr_window_s", 30), "passback_s": site.get("passback_s", 60),
         "locked": False}
    if d["operator"] is None or d["operator_key"] is None:
        raise BadConfig("config: operator and operator_key are required (site file)")
    rules = firmware_rules()
    try:
        rules.validate(d)
    except rules.ConfigError as e:
        raise BadConfig(str(e)) from None
    return json.dumps(d, separators=(",", ":"), sort_keys=True)


def check_bundle(path, kind, operator_key_hex):
    """Read a bundle file and verify it against the operator key; its bytes and version."""
    names = {bundles.TRUST: "trust list", bundles.FARES: "fare table"}
    try:
        data = pathlib.Path(path).read_bytes()
    except (OSError, TypeError) as e:
        raise BadConfig("cannot read %s bundle %s: %s" % (names[kind], path, e)) from None
    try:
        key = bytes.fromhex(operator_key_hex)
        b = bundles.parse_bundle(data, public_key=key, expect_kind=kind)
    except bundles.BundleError as e:
        raise BadConfig("%s bundle %s refused: %s" % (names[kind], path, e)) from None
    except ValueError as e:
        raise BadConfig("operator key unusable: %s" % e) from None
    return data, b.version
