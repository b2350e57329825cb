# The device side of provisioning and maintenance on the serial port (docs/provisioning.md).
#
# Two halves:
# - commands the depot tool calls through the raw REPL once it has one
#   (`import maint; maint.run("info")`): each prints exactly one result line
#   "@@M <json>" — {"ok": true, "r": ...} or {"ok": false, "err": code, "msg": text} —
#   so the host never has to parse a traceback;
# - the production lock (`boot()`, called from boot.py): a locked validator disables the
#   interrupt character, never drops to the prompt, and opens a maintenance session only
#   for a request answered with HMAC-SHA256 under its device secret (challenge-response,
#   one answer per fresh random challenge).
import binascii
import gc
import hashlib
import json
import os
import select
import sys
import time

import micropython
from micropython import const

DATA = "/data"
CONFIG = "/data/config.json"
SECRET = "/data/secret.bin"
MANIFEST = "/manifest.json"  # the installed build's manifest: the firmware's identity
LOCK_MARK = "/data/locked"  # present = production lock on (written by lock(), atomically)
SECRET_LEN = const(32)
WINDOW_MS = const(3000)  # after a reset, how long a locked validator listens first
SESSION_MS = const(10000)  # after an authenticated request, how long Ctrl-C is let in
_LINE_MAX = const(160)
_MAC_LABEL = b"BRT-MAINT-v1|"


class MaintError(Exception):
    def __init__(self, code, msg=""):
        super().__init__(code, msg)
        self.code = code
        self.msg = msg


# --- small helpers ------------------------------------------------------------------------
def _hex(b):
    return binascii.hexlify(b).decode()


def _exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def _sha_file(path):
    h = hashlib.sha256()
    buf = bytearray(512)
    try:
        with open(path, "rb") as f:
            while True:
                n = f.readinto(buf)
                if not n:
                    break
                h.update(memoryview(buf)[:n])
    except OSError:
        return None
    return _hex(h.digest())


def _write_atomic(path, data):
    # tmp + rename: LittleFS renames atomically, so a power cut leaves old or new, never half
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, path)


def _ensure_data():
    if not _exists(DATA):
        os.mkdir(DATA)


def device_id():
    import machine
    return _hex(machine.unique_id())


def _secret():
    try:
        with open(SECRET, "rb") as f:
            s = f.read(SECRET_LEN + 1)
    except OSError:
        return None
    return s if len(s) == SECRET_LEN else None


def fingerprint(secret):
    """What the audit log keeps instead of the secret: 8 bytes of a labelled SHA-256."""
    return _hex(hashlib.sha256(b"brt-secret-fp|" + secret).digest()[:8])


def _read_config():
    from app import config  # the validator's own validator: one set of rules
    return config.load(CONFIG)


def _locked():
    # The marker file decides, so a config.json that is damaged (or too big for the heap
    # right now) cannot unlock a validator; the config's "locked" mirrors it for the app.
    if _exists(LOCK_MARK):
        return True
    try:
        return _read_config().locked is True
    except Exception:  # noqa: BLE001 - no or bad config and no marker: not provisioned
        return False


# --- commands (called through the raw REPL) -----------------------------------------------
def info():
    try:
        st = os.statvfs(DATA if _exists(DATA) else "/")
        free = st[0] * st[3]
    except OSError:
        free = -1
    s = _secret()
    return {"id": device_id(), "platform": sys.platform,
            "mpy": ".".join(str(x) for x in sys.implementation.version[:3]),
            "fw": _sha_file(MANIFEST), "cfg": _sha_file(CONFIG), "locked": _locked(),
            "secret_fp": fingerprint(s) if s else None, "free": free}


def enroll(secret_hex):
    try:
        secret = binascii.unhexlify(secret_hex)
    except ValueError:
        raise MaintError("bad_secret", "not hex")
    if len(secret) != SECRET_LEN:
        raise MaintError("bad_secret", "must be %d bytes" % SECRET_LEN)
    _ensure_data()
    _write_atomic(SECRET, secret)
    if _secret() != secret:
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
    _ensure_data()
    _write_atomic(CONFIG, text)
    # read back through the same validator the validator uses at boot
    if _read_config().to_dict() != cfg.to_dict():
        raise MaintError("io", "config read back differs")
    return _sha_file(CONFIG)


def install_bundle(stage, kind, sha):
    """Install a bundle the depot tool staged, checked against the pinned operator key.

    With no P-256 verifier in this firmware build the signature was checked by the depot
    tool only; then the staged bytes must hash to what it checked (`sha`), the header must
    parse and the version must be newer: the answer says which ("by": "device"/"host")."""
    import bundles
    cfg = _read_config()
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
            if _sha_file(stage) != sha:
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
        if _exists(stage):
            os.remove(stage)
    return {"version": h.version, "sha": _sha_file(final), "by": by}


def set_clock(unix):
    from maint_selftest import set_clock as _set
    return _set(unix)


def lock(on=True):
    from app import config
    cfg = _read_config()
    if on and _secret() is None:
        raise MaintError("not_enrolled", "refusing to lock a device with no secret")
    d = cfg.to_dict()
    d["locked"] = bool(on)
    text = json.dumps(d)
    config.parse(text)
    if on:  # marker first: from here on the board is locked whatever happens next
        _write_atomic(LOCK_MARK, b"1")
        _write_atomic(CONFIG, text)
    else:  # config first: the marker goes last, so a cut leaves the board locked
        _write_atomic(CONFIG, text)
        if _exists(LOCK_MARK):
            os.remove(LOCK_MARK)
    return _sha_file(CONFIG)


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


def drop_modules(before):
    """Forget modules imported since `before` (a set of names), then collect."""
    for m in list(sys.modules):
        if m not in before and m not in _KEEP:
            del sys.modules[m]
    gc.collect()


# --- the production lock ----------------------------------------------------------------
def mac(secret, devid, nonce):
    from hmac256 import Key
    return Key(secret).mac(_MAC_LABEL + devid.encode() + b"|" + nonce)


def _same(a, b):
    # constant time: the answer must not leak how many leading bytes were right
    if len(a) != len(b):
        return False
    d = 0
    for i in range(len(a)):
        d |= a[i] ^ b[i]
    return d == 0


def listen(secret, devid, window_ms, stream=None, out=None):
    """Serve maintenance requests on the console until one is authenticated (True) or
    `window_ms` passes (False; 0 = forever). Lines: "BRT-MAINT HELLO" -> a fresh challenge;
    "BRT-MAINT OPEN <hmac hex>" -> OK or DENIED. Anything else is ignored."""
    stream = stream or sys.stdin.buffer
    out = out or sys.stdout
    p = select.poll()
    p.register(stream, select.POLLIN)
    line = bytearray()
    nonce = None
    t0 = time.ticks_ms()
    while window_ms == 0 or time.ticks_diff(time.ticks_ms(), t0) < window_ms:
        if not p.poll(50):
            continue
        c = stream.read(1)
        if not c:
            continue
        if c not in b"\r\n":
            if len(line) < _LINE_MAX:
                line += c
            continue
        words = bytes(line).split()
        line = bytearray()
        if len(words) < 2 or words[0] != b"BRT-MAINT":
            continue
        if words[1] == b"HELLO":
            time.sleep_ms(30)
            while p.poll(0):  # repeated HELLOs queued while booting: answer the last only
                stream.read(1)
            nonce = os.urandom(16)
            out.write("BRT-MAINT CHALLENGE %s %s\r\n" % (devid, _hex(nonce)))
        elif words[1] == b"OPEN" and len(words) == 3:
            ok = False
            if nonce is None:
                why = "no-challenge"
            elif secret is None:
                why = "not-enrolled"
            else:
                try:
                    ok = _same(binascii.unhexlify(words[2]), mac(secret, devid, nonce))
                except ValueError:
                    pass
                why = "bad-answer"
            nonce = None  # one answer per challenge
            if ok:
                out.write("BRT-MAINT OK\r\n")
                return True
            out.write("BRT-MAINT DENIED %s\r\n" % why)
    return False


def boot():
    """From boot.py: nothing to do unless locked. Locked, it never returns to the prompt:
    any failure resets the board (fail closed); only an authenticated maintenance session
    lets the depot tool's Ctrl-C through (which ends boot.py, and the ESP32 port then
    skips main.py)."""
    if not _locked():
        micropython.kbd_intr(3)  # boot.py turned it off until this was decided
        return
    while True:
        micropython.kbd_intr(-1)
        try:
            _guard()
        except BaseException as e:  # noqa: B036 - an escape here would open the REPL
            _fail_closed(e)
        _session()


def _fail_closed(e):
    try:
        sys.print_exception(e)
    finally:
        import machine
        machine.reset()  # never returns on the ESP32; ends the process on the simulator


def _guard():
    # returns only once a maintenance request was authenticated
    secret, devid = _secret(), device_id()
    print("BRT-LOCKED", devid)
    if listen(secret, devid, WINDOW_MS):
        return
    _forget()
    try:
        with open("main.py") as f:
            src = f.read()
        exec(compile(src, "main.py", "exec"), {"__name__": "__main__"})
    except SystemExit:
        # the app asked to end (machine.reset() on the simulator is a SystemExit): a
        # locked validator restarts instead of returning to the prompt
        import machine
        machine.reset()
    except BaseException as e:  # noqa: B036 - the app failed: stay locked, keep listening
        sys.print_exception(e)
    src = None
    _forget()
    # the app ended: a locked validator waits for maintenance instead of showing a prompt
    while not listen(secret, devid, 0):
        pass


def _session():
    # Authenticated: let the depot tool's Ctrl-C in. The KeyboardInterrupt ends boot.py
    # with an exception, and then the ESP32 port skips main.py: the tool gets the REPL
    # with a clean heap, not one full of the validator app. No Ctrl-C in time: stay locked.
    _forget()
    micropython.kbd_intr(3)
    t0 = time.ticks_ms()
    while time.ticks_diff(time.ticks_ms(), t0) < SESSION_MS:
        time.sleep_ms(20)
    micropython.kbd_intr(-1)


# Built into the ESP32 port (so never in sys.modules there); on the simulator they are
# files holding the virtual board's state (the flash chip, the link): never dropped.
_KEEP = ("maint", "machine", "esp32", "network", "flashdev")


def _forget():
    for m in list(sys.modules):
        if m not in _KEEP:
            del sys.modules[m]
    gc.collect()
