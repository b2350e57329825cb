"""Serial provisioning for depot technicians (DESIGN §7; guide: docs/provisioning.md).

    python host/provision.py ports
    python host/provision.py all --site depot.json --bus B-017 --route K1 [--port P]
    python host/provision.py flash|partition|install|enroll|configure|selftest|lock|unlock ...

Every step checks what the validator already has first: re-running is safe, and an
interrupted run resumes where it stopped. Every step is recorded in the audit log.
Exit codes: 0 ok, 1 other, 2 usage, 3 no port, 4 port busy, 5 wrong chip, 6 no answer,
7 locked, 8 bad config, 9 device error, 10 registry, 11 firmware build, 12 unsent taps.
"""

import argparse
import hashlib
import os
import pathlib
import sys

if __package__ in (None, ""):  # run as a script: make `host` importable
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
    try:
        import cbor2  # noqa: F401 - the project's packages (requirements.txt) present?
        import serial  # noqa: F401
    except ImportError as _e:
        # a fresh shell's `python` is not the project's: use .venv's (make venv builds it)
        _venv = pathlib.Path(__file__).resolve().parents[1] / ".venv" / "bin" / "python"
        if _venv.exists() and pathlib.Path(sys.executable).resolve() != _venv.resolve():
            os.execv(str(_venv), [str(_venv)] + sys.argv)
        print("error: %s: run `make venv`, then `.venv/bin/python host/provision.py ...`"
              % _e, file=sys.stderr)
        sys.exit(1)

from host import bundles  # noqa: E402
from host.provisioning import audit as auditlog  # noqa: E402
from host.provisioning import config as hostconfig  # noqa: E402
from host.provisioning import flash as flashmod  # noqa: E402
from host.provisioning import install as installmod  # noqa: E402
from host.provisioning import partition as partmod  # noqa: E402
from host.provisioning import ports as portsmod  # noqa: E402
from host.provisioning import registry as regmod  # noqa: E402
from host.provisioning import steps  # noqa: E402
from host.provisioning.errors import (  # noqa: E402
    DeviceError,
    DeviceLocked,
    NoAnswer,
    ProvisionError,
    Usage,
)
from host.provisioning.link import Link  # noqa: E402
from host.provisioning.ui import Bar, say  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
STEPS = ("install", "enroll", "configure", "selftest", "lock")


def _parser():
    ap = argparse.ArgumentParser(prog="provision.py", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--port", help="serial port (default: the only ESP32 board plugged in)")
    common.add_argument("--baud", type=int, default=115200)
    common.add_argument("--audit", default=os.environ.get("BRT_AUDIT", "provision-audit.jsonl"),
                        help="audit log (JSON lines, appended)")
    common.add_argument("--technician", help="name for the audit log (default: login name)")
    reg = argparse.ArgumentParser(add_help=False)
    reg.add_argument("--registry", help="depot device registry (default: the site file's)")
    site = argparse.ArgumentParser(add_help=False)
    site.add_argument("--site", help="depot settings (JSON): operator, key, Wi-Fi, bundles")
    cfg = argparse.ArgumentParser(add_help=False)
    cfg.add_argument("--bus", required=True, help="bus number, e.g. B-017")
    cfg.add_argument("--route", required=True, help="route, e.g. K1")
    build = argparse.ArgumentParser(add_help=False)
    build.add_argument("--build", default=str(ROOT / "build" / "firmware"),
                       help="firmware build (make firmware)")

    sub.add_parser("ports", help="list serial ports that look like ESP32 boards")
    p = sub.add_parser("flash", parents=[common], help="write a MicroPython image (esptool)")
    p.add_argument("image", help="MicroPython release image (.bin)")
    p.add_argument("--chip", default="ESP32-S3", choices=sorted(flashmod.OFFSETS),
                   help="the board's chip (default: the reference board's ESP32-S3)")
    p.add_argument("--version", help="MicroPython version of the image (default: from its name)")
    p = sub.add_parser("partition", parents=[common],
                       help="write the validator's partition table (16 MB: app, vfs, journal)")
    p.add_argument("--force", action="store_true",
                   help="change the table even if the journal holds unsent taps (they are lost)")
    sub.add_parser("install", parents=[common, build], help="copy the firmware (changed files)")
    sub.add_parser("enroll", parents=[common, site, reg], help="device secret + registration")
    sub.add_parser("configure", parents=[common, site, cfg],
                   help="config, trust list, fare table, clock")
    sub.add_parser("selftest", parents=[common], help="test every part on the device")
    p = sub.add_parser("lock", parents=[common], help="production mode: no REPL on the port")
    p.add_argument("--wait", type=float, default=60.0,
                   help="seconds to wait for a reset when the board is silent (a locked "
                        "validator answers only just after a reset)")
    p = sub.add_parser("unlock", parents=[common, site, reg],
                       help="authenticated maintenance: take a validator out of production mode")
    p.add_argument("--wait", type=float, default=60.0, help="seconds to wait for a reset")
    sub.add_parser("all", parents=[common, site, reg, cfg, build],
                   help="install, enroll, configure, selftest, lock")
    return ap


def _registry(a, site):
    return regmod.open_registry(a.registry or (site or {}).get("registry"))


def _site(a):
    if not a.site:
        raise Usage("--site is required for %s (the depot's settings file)" % a.cmd)
    return hostconfig.load_site(a.site)


def _run_step(name, fn, log, link):
    try:
        try:
            res = fn()
        except (KeyError, TypeError, ValueError, IndexError) as e:
            # an answer of the wrong shape (garbled line, other firmware): typed, not a crash
            raise DeviceError("%s: unexpected answer from the device (%s: %s)"
                              % (name, type(e).__name__, e)) from None
    except ProvisionError as e:
        log.record(name, False, error=e.code, message=e.msg)
        e.recorded = True
        raise
    try:
        info = link.call("info") if name != "lock" else None
    except ProvisionError:
        info = None
    if info:
        log.device, log.fw, log.cfg = info["id"], info["fw"], info["cfg"]
    log.record(name, True, result=res)
    return res


def run(a):
    if a.cmd == "ports":
        found = portsmod.candidates()
        if not found:
            say("no ESP32 boards found on USB")
            return 0
        for f in found:
            say("%-16s %-36s serial %s" % (f["port"], f["bridge"], f["serial"] or "-"))
        return 0
    log = auditlog.Audit(a.audit, a.technician)
    port = portsmod.pick(a.port)
    if a.cmd == "flash":
        link = None
        try:
            link = Link(port, a.baud)
        except ProvisionError:
            link = None
        try:
            res = flashmod.flash(port, a.image, a.chip, a.version, link, say)
        except ProvisionError as e:
            log.record("flash", False, error=e.code, message=e.msg, port=port)
            raise
        log.record("flash", True, result=res, port=port)
        return 0
    if a.cmd == "partition":
        try:
            res = _partition(a, log, port)
        except ProvisionError as e:
            log.record("partition", False, error=e.code, message=e.msg, port=port)
            raise
        log.record("partition", True, result=res, port=port)
        return 0
    site = _site(a) if a.cmd in ("enroll", "configure", "all") or \
        (a.cmd == "unlock" and a.site) else None
    if a.cmd in ("configure", "all"):
        # refuse a bad config before touching the board (the real device id comes later)
        try:
            hostconfig.build(site, "00000000", a.bus, a.route)
            for kind in (bundles.TRUST, bundles.FARES):
                hostconfig.check_bundle(site.get({bundles.TRUST: "trust",
                                                  bundles.FARES: "fares"}[kind]),
                                        kind, site["operator_key"])
        except ProvisionError as e:
            log.record(a.cmd, False, error=e.code, message=e.msg)
            raise
    try:
        _session(a, log, port, site)
    except ProvisionError as e:
        if not getattr(e, "recorded", False):  # failed before a step began (no port, locked…)
            log.record(a.cmd, False, error=e.code, message=e.msg, port=port)
        raise
    if a.cmd == "all":
        say("done: validator provisioned and locked")
    return 0


def _session(a, log, port, site):
    with Link(port, a.baud) as link:
        if a.cmd == "unlock":
            reg = _registry(a, site)
            _run_step("unlock", lambda: steps.unlock(link, reg, a.wait, say), log, link)
            return
        # a clean interpreter: main.py (the validator app) may have had the heap
        try:
            link.fresh()
        except (DeviceLocked, NoAnswer) as e:
            # a silent board may be a locked validator serving riders: after a reset it
            # answers a maintenance hello (docs/provisioning.md: "already locked", exit 0)
            if a.cmd != "lock" or (isinstance(e, NoAnswer) and
                                   steps.challenge_after_reset(link, a.wait, say) is None):
                raise
            say("lock: already locked — nothing to do")
            log.record("lock", True, result={"already": True})
            return
        info = None
        try:
            info = link.call("info")
            log.device, log.fw, log.cfg = info["id"], info["fw"], info["cfg"]
        except ProvisionError:
            pass  # firmware not installed yet: install says so or fixes it
        if a.cmd == "all":
            say(_where(a, info))
        todo = STEPS if a.cmd == "all" else (a.cmd,)
        for name in todo:
            if name == "install":
                _run_step(name, lambda: installmod.install(
                    link, a.build, say, lambda n, label: Bar(n, label)), log, link)
            elif name == "enroll":
                reg = _registry(a, site)
                _run_step(name, lambda r=reg: steps.enroll(link, r, say), log, link)
            elif name == "configure":
                _run_step(name, lambda: steps.configure(link, site, a.bus, a.route, say=say),
                          log, link)
            elif name == "selftest":
                _run_step(name, lambda: steps.selftest(link, say), log, link)
            elif name == "lock":
                _run_step(name, lambda: steps.lock(link, say), log, link)


def _partition(a, log, port, esptool_cmds=None):
    """The board's running MicroPython says what it holds, esptool writes the table. A
    board whose MicroPython does not answer (e.g. re-flashed by another tool with the stock
    table: its LittleFS then does not mount and MicroPython loops on "filesystem
    corrupted") is judged from the table on its flash alone."""
    link = Link(port, a.baud)
    try:
        try:
            link.fresh()  # a locked validator: DeviceLocked (unlock first)
        except NoAnswer:
            link.close()
            link = None
        if link is not None:
            try:
                info = link.call("info")
                log.device, log.fw, log.cfg = info["id"], info["fw"], info["cfg"]
            except ProvisionError:
                pass  # no validator firmware yet: the probe needs none
        return partmod.partition(port, link, a.force, say, esptool_cmds or ESPTOOL)
    finally:
        if link is not None:
            link.close()


ESPTOOL = None  # esptool.cmds (imported when needed); tests put a fake of the chip here


def _where(a, info):
    """One line for the technician: what this validator already has (the device is the
    resume state: each step checks it again before doing anything)."""
    if info is None:
        return "board: no validator firmware yet — starting from install"
    have = []
    try:
        _, mbytes = installmod.load_manifest(a.build)
        if info["fw"] == hashlib.sha256(mbytes).hexdigest():
            have.append("firmware current")
        elif info["fw"]:
            have.append("older firmware")
    except ProvisionError:
        pass
    have.append("enrolled" if info["secret_fp"] else "not enrolled")
    have.append("configured" if info["cfg"] else "not configured")
    return "board %s: %s — steps already done are skipped" % (info["id"], ", ".join(have))


def main(argv=None):
    ap = _parser()
    try:
        a = ap.parse_args(argv)
    except SystemExit as e:  # argparse has printed the usage and the message
        return e.code if isinstance(e.code, int) else 2
    try:
        return run(a)
    except ProvisionError as e:
        if "incompatible .mpy arch" in e.msg:
            # the board refused a compiled module: the build is for another CPU
            e.msg = "the firmware on the board was built for another CPU (incompatible .mpy arch)"
            e.hint = ("a real ESP32 needs `make firmware` (xtensawin); the simulated board "
                      "(x86-64) needs `make sim-board-firmware` (build/firmware-x64); then "
                      "`install --build DIR` again")
        print("error: %s" % e.msg, file=sys.stderr)
        if e.hint:
            print("  hint: %s" % e.hint, file=sys.stderr)
        return e.exit
    except KeyboardInterrupt:
        print("interrupted: run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
