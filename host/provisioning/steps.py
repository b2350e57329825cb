"""The provisioning steps after install: enroll, configure, selftest, lock, unlock.

Each step first asks the device what it already has and does only what is missing, so
any step (and the whole run) is safe to repeat and an interrupted run simply resumes.
Each returns a dict that goes into the audit log (never a secret).
"""

import hashlib
import secrets
import time

from host import bundles

from . import config
from .errors import DeviceError, DeviceLocked, NoAnswer
from .install import device_hashes, put_file
from .registry import fingerprint


def enroll(link, registry, say=print):
    info = link.call("info")
    dev = info["id"]
    if info["secret_fp"] and registry.fingerprint(dev) == info["secret_fp"]:
        say("enroll: %s already enrolled (secret %s…) — skipped" % (dev, info["secret_fp"][:8]))
        return {"skipped": True, "fp": info["secret_fp"]}
    secret = secrets.token_bytes(32)
    fp = link.call("enroll", secret.hex())
    if fp != fingerprint(secret):
        raise DeviceError("enroll: the device stored a different secret (fingerprint %s)" % fp)
    registry.register(dev, secret)
    del secret  # the depot registry has it now; this laptop keeps the fingerprint only
    say("enroll: %s enrolled, secret fingerprint %s" % (dev, fp))
    return {"skipped": False, "fp": fp}


def configure(link, site, bus, route, now=time.time, say=print):
    info = link.call("info")
    dev = info["id"]
    # everything is checked before anything is written
    text = config.build(site, dev, bus, route)
    key = site["operator_key"]
    staged = [(bundles.TRUST, "trust.cose") + config.check_bundle(site.get("trust"), bundles.TRUST, key),
              (bundles.FARES, "fares.cose") + config.check_bundle(site.get("fares"), bundles.FARES, key)]
    want = hashlib.sha256(text.encode()).hexdigest()
    done = {"cfg": want}
    if info["cfg"] != want:
        got = link.call("configure", text)
        if got != want:
            raise DeviceError("configure: config read back differs (%s)" % got)
        say("configure: config.json written (bus %s, route %s)" % (bus, route))
    else:
        say("configure: config.json already as wanted — skipped")
    if link.call("info")["cfg"] != want:
        raise DeviceError("configure: config.json on the device is not the one written")
    have = device_hashes(link, ["data/" + name for _, name, _, _ in staged])
    for kind, name, data, version in staged:
        sha = hashlib.sha256(data).hexdigest()
        if have.get("data/" + name) == sha:
            say("configure: %s v%d already installed — skipped" % (name, version))
            done[name] = {"version": version, "sha": sha, "skipped": True}
            continue
        put_file(link, "data/%s.stage" % name, data)
        r = link.call("install_bundle", "/data/%s.stage" % name, kind, sha)
        if r["sha"] != sha:
            raise DeviceError("configure: %s installed differs from the one sent" % name)
        say("configure: %s v%d installed (signature checked by %s)" % (name, version, r["by"]))
        done[name] = r
    t = int(now())
    clk = link.call("set_clock", t)
    if abs(clk["read"] - t) > 2:
        raise DeviceError("configure: clock set to %d but reads %d" % (t, clk["read"]))
    say("configure: clock set (%s)" % clk["via"])
    done["clock"] = clk
    return done


def selftest(link, say=print):
    results = link.call("selftest", timeout=60)
    failed = [r["name"] for r in results if r["ok"] is False]
    for r in results:
        mark = {True: "ok  ", False: "FAIL", None: "skip"}[r["ok"]]
        say("selftest: %s %-8s %s" % (mark, r["name"], r["detail"]))
    if failed:
        raise DeviceError("selftest failed: %s" % ", ".join(failed), "see the lines above")
    return {"results": results}


def lock(link, say=print):
    info = link.call("info")
    if not info["secret_fp"] or not info["cfg"]:
        raise DeviceError("lock: enroll and configure the device first")
    cfg = link.call("lock", True)
    link.soft_reset(expect_raw=False)
    # the proof: after the reboot nobody gets a REPL any more
    try:
        link.read_until(b"BRT-LOCKED", 10)
        link.enter_raw(attempts=1)
    except (DeviceLocked, NoAnswer):
        say("lock: %s locked — the serial port gives no REPL" % info["id"])
        return {"cfg": cfg}
    raise DeviceError("lock: the device still opens a REPL after locking")


def open_session(link, registry, wait=60.0, say=print):
    """Open a maintenance session on a locked validator (challenge, HMAC answer)."""
    got = challenge_after_reset(link, wait, say)
    if got is None:
        raise NoAnswer("unlock: no maintenance challenge from the validator in %d s" % wait,
                       "is it a locked BRT validator? reset it while this waits")
    dev, nonce = got
    mac = registry.answer(dev, nonce)
    return _open(link, dev, mac, say)


def challenge_after_reset(link, wait=60.0, say=print):
    """(device id, nonce) from a locked validator, resetting it first if it is silent (a
    locked validator listens only in its first 3 s); None if none answered in `wait` s."""
    got = link.probe_locked(1.5)
    if got is None:
        try:  # boards with the usual auto-reset wiring: RTS pulls EN low
            link.ser.dtr = False
            link.ser.rts = True
            time.sleep(0.1)
            link.ser.rts = False
            say("unlock: resetting the validator…")
        except OSError:
            say("unlock: press the validator's reset button (or switch it off and on) now")
        end = time.monotonic() + wait
        while got is None and time.monotonic() < end:
            got = link.probe_locked(0.5)
    return got


def _open(link, dev, mac, say):
    link.write(b"BRT-MAINT OPEN " + mac.hex().encode() + b"\r\n")
    line = link.read_until(b"\r\n", 5)
    while b"BRT-MAINT " not in line:
        line = link.read_until(b"\r\n", 5)
    if b"BRT-MAINT OK" not in line:
        raise DeviceLocked("the validator refused the maintenance request: %s"
                           % line.decode("ascii", "replace").strip())
    say("unlock: maintenance session open on %s" % dev)
    link.enter_raw()  # its Ctrl-C ends boot.py: main.py is skipped, the heap is clean
    return dev


def unlock(link, registry, wait=60.0, say=print):
    try:  # not locked at all? then there is nothing to open (safe to re-run)
        link.enter_raw(attempts=1)
    except (DeviceLocked, NoAnswer):
        dev = open_session(link, registry, wait, say)
    else:
        link.soft_reset()
        dev = link.call("info")["id"]
    cfg = link.call("lock", False)
    say("unlock: %s unlocked (run `lock` again when done)" % dev)
    return {"device": dev, "cfg": cfg}
