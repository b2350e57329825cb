# The production lock of a provisioned validator (docs/provisioning.md), run by boot.py
# at every reset. Kept apart from maint.py (the provisioning commands) so that a locked
# validator loads only this at boot.
#
# A locked validator disables the interrupt character, never drops to the prompt, and
# opens a maintenance session only for a request answered with HMAC-SHA256 under its
# device secret (challenge-response, one answer per fresh random challenge).
import binascii
import gc
import hashlib
import os
import select
import sys
import time

import micropython
from micropython import const

from fsutil import exists, write_atomic  # noqa: F401 - maint.py imports them from here

DATA = "/data"
CONFIG = "/data/config.json"
SECRET = "/data/secret.bin"
LOCK_MARK = "/data/locked"  # present = production lock on (written by lock(), atomically)
SECRET_LEN = const(32)
WINDOW_MS = const(3000)  # after a reset, how long a locked validator listens first
SESSION_MS = const(10000)  # after an authenticated request, how long Ctrl-C is let in
_LINE_MAX = const(160)
_MAC_LABEL = b"BRT-MAINT-v1|"


# --- small helpers ------------------------------------------------------------------------
def hexs(b):
    return binascii.hexlify(b).decode()


def sha_file(path):
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
    return hexs(h.digest())


def ensure_data():
    if not exists(DATA):
        os.mkdir(DATA)


def device_id():
    import machine
    return hexs(machine.unique_id())


def read_secret():
    try:
        with open(SECRET, "rb") as f:
            s = f.read(SECRET_LEN + 1)
    except OSError:
        return None
    return s if len(s) == SECRET_LEN else None


def fingerprint(secret):
    """What the audit log keeps instead of the secret: 8 bytes of a labelled SHA-256."""
    return hexs(hashlib.sha256(b"brt-secret-fp|" + secret).digest()[:8])


def read_config():
    from app import config  # the validator's own validator: one set of rules
    return config.load(CONFIG)


def locked():
    # The marker file decides, so a config.json that is damaged (or too big for the heap
    # right now) cannot unlock a validator; the config's "locked" mirrors it for the app.
    if exists(LOCK_MARK):
        return True
    try:
        return read_config().locked is True
    except Exception:  # noqa: BLE001 - no or bad config and no marker: not provisioned
        return False


# --- the production lock ----------------------------------------------------------------
def mac(secret, devid, nonce):
    from hmac256 import Key  # imported when needed: the locked boot path stays small
    # the depot registry holds the "maint" key derived from the secret, never the secret
    # itself (docs/sync-api.md 'Keys'; host/synckeys.py)
    k = Key(secret).mac(b"BRT-KDF-v1|maint")
    return Key(k).mac(_MAC_LABEL + devid.encode() + b"|" + nonce)


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
            import entropy  # made at boot, before Wi-Fi: os.urandom alone is weak then
            nonce = entropy.random(16)
            out.write("BRT-MAINT CHALLENGE %s %s\r\n" % (devid, hexs(nonce)))
        elif words[1] == b"OPEN" and len(words) == 3:
            ok = False
            if nonce is None:
                why = "no-challenge"
            elif secret is None:
                why = "not-enrolled"
            else:
                try:
                    # constant time: the answer must not leak how many leading bytes were right
                    from hmac256 import equal
                    ok = equal(binascii.unhexlify(words[2]), mac(secret, devid, nonce))
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
    if not locked():
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
    secret, devid = read_secret(), device_id()
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
_KEEP = ("maint_lock", "maint", "machine", "esp32", "network", "flashdev")


def _forget():
    for m in list(sys.modules):
        if m not in _KEEP:
            del sys.modules[m]
    gc.collect()


def drop_modules(before):
    """Forget modules imported since `before` (a set of names), then collect."""
    for m in list(sys.modules):
        if m not in before and m not in _KEEP:
            del sys.modules[m]
    gc.collect()
