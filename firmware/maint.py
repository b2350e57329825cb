# The device side of provisioning and maintenance on the serial port (docs/provisioning.md):
# commands the depot tool calls through the raw REPL once it has one
# (`import maint; maint.run("info")`). Each prints exactly one result line
# "@@M <json>" — {"ok": true, "r": ...} or {"ok": false, "err": code, "msg": text} — so
# the host never has to parse a traceback. The production lock is maint_lock.py.
import binascii
import gc
import json
import os
import sys

from maint_lock import (CONFIG, DATA, LOCK_MARK, SECRET, SECRET_LEN, device_id,
                        drop_modules, ensure_data, exists, fingerprint, locked,
                        read_config, read_secret, sha_file, write_atomic)

MANIFEST = "/manifest.json"  # the installed build's manifest: the firmware's identity


class MaintError(Exception):
    def __init__(self, code, msg=""):
        super().__init__(code, msg)
        self.code = code
        self.msg = msg


# --- commands (called through the raw REPL) -----------------------------------------------
def info():
    try:
        st = os.statvfs(DATA if exists(DATA) else "/")
        free = st[0] * st[3]
    except OSError:
        free = -1
    s = read_secret()
    return {"id": device_id(), "platform": sys.platform,
            "mpy": ".".join(str(x) for x in sys.implementation.version[:3]),
            "fw": sha_file(MANIFEST), "cfg": sha_file(CONFIG), "locked": locked(),
            "secret_fp": fingerprint(s) if s else None, "free": free}


def enroll(secret_hex):
    try:
        secret = binascii.unhexlify(secret_hex)
    except ValueError:
        raise MaintError("bad_secret", "not hex")
    if len(secret) != SECRET_LEN:
        raise MaintError("bad_secret", "must be %d bytes" % SECRET_LEN)
    ensure_data()
    write_atomic(SECRET, secret)
    if read_secret() != secret:
        raise MaintError("io", "secret read back differs")
    return fingerprint(secret)


def configure(text):
    from app import config
    try:
        cfg = config.parse(text)
    except config.ConfigError as e:
        raise MaintError("bad_config", str(e))
    if cfg.device_id != device_id():
        raise MaintError("bad_config", "config device_id: is %s, this device is %s"
                         % (cfg.device_id, device_id()))
    ensure_data()
    write_atomic(CONFIG, text)
    # read back through the same validator the validator uses at boot
    if read_config().to_dict() != cfg.to_dict():
        raise MaintError("io", "config read back differs")
    return sha_file(CONFIG)


def install_bundle(stage, kind, sha):
    """Install a bundle the depot tool staged, checked against the pinned operator key.

    With no P-256 verifier in this firmware build the signature was checked by the depot
    tool only; then the staged bytes must hash to what it checked (`sha`), the header must
    parse and the version must be newer: the answer says which ("by": "device"/"host")."""
    import bundles
    cfg = read_config()
    final = bundles.path_for(DATA, kind)
    by = "device"
    try:
        try:
            verify = bundles.default_verify()
        except ImportError:
            verify = None
        if verify is not None:
            h = bundles.install_file(stage, DATA, cfg.operator_key_bytes(), verify, kind)
        else:
            by = "host"
            if sha_file(stage) != sha:
                raise MaintError("bad_bundle", "staged bundle differs from the checked one")
            with open(stage, "rb") as f:
                h = bundles.parse_header(f.read(bundles.HEADER))
            if h.kind != kind:
                raise MaintError("bad_bundle", "wrong kind %d" % h.kind)
            if h.version <= bundles.installed_version(DATA, kind):
                raise MaintError("bad_bundle", "stale: version %d" % h.version)
            os.rename(stage, final)
    except bundles.BundleError as e:
        raise MaintError("bad_bundle", " ".join(str(a) for a in e.args))
    finally:
        if exists(stage):
            os.remove(stage)
    return {"version": h.version, "sha": sha_file(final), "by": by}


def set_clock(unix):
    from maint_selftest import set_clock as _set
    return _set(unix)


def lock(on=True):
    from app import config
    cfg = read_config()
    if on and read_secret() is None:
        raise MaintError("not_enrolled", "refusing to lock a device with no secret")
    d = cfg.to_dict()
    d["locked"] = bool(on)
    text = json.dumps(d)
    config.parse(text)
    if on:  # marker first: from here on the board is locked whatever happens next
        write_atomic(LOCK_MARK, b"1")
        write_atomic(CONFIG, text)
    else:  # config first: the marker goes last, so a cut leaves the board locked
        write_atomic(CONFIG, text)
        if exists(LOCK_MARK):
            os.remove(LOCK_MARK)
    return sha_file(CONFIG)


def selftest():
    import maint_selftest
    return maint_selftest.run()


def run(name, *args):
    """Call one command and print its one-line result for the depot tool."""
    # modules a command imports (the P-256 verifier and its tables, the app's config...)
    # are dropped afterwards: the REPL session lives on between commands and the heap is
    # the ESP32's ~110 KB
    before = set(sys.modules)
    gc.collect()
    try:
        res = {"ok": True, "r": globals()[name](*args)}
    except MaintError as e:
        res = {"ok": False, "err": e.code, "msg": e.msg}
    except Exception as e:  # noqa: BLE001 - turned into a typed answer for the host
        res = {"ok": False, "err": "internal", "msg": "%s: %s" % (type(e).__name__, e)}
    drop_modules(before)
    print("@@M", json.dumps(res))
