"""`python -m sim conformance --keys DIR --cases DIR`: a wallet partner's conformance kit.

The partner's issuer public keys are installed on a fresh simulated validator the way an
operator installs them - a trust-list bundle signed with the simulator's operator key,
served by the depot host and taken by the validator at a depot sync (then it reboots and
verifies it like at power-on) - and every case runs through the real firmware: QR text
through the virtual scanner, NFC through a phone answering the validator's real APDUs
(SELECT, TAP with its random challenge, GET RESPONSE). One line per case, JUnit XML and
JSON; exit 0 when every case got its expected result, 1 otherwise, 2 if the kit could not
run (a bad key or manifest, the simulator failed). docs/conformance.md is the partner's
guide.
"""

import pathlib
import sys
import tempfile
import time

from host import bundles as hb
from sim import conformance_cases as cc
from sim import conformance_reasons as cr
from sim import conformance_report as rep
from sim.conformance_keys import ConformanceError, load_keys, trust_body
from sim.launcher import SimBoard, SimError

FAULT_WAIT_S = 15      # a reader fault is retried by the validator every 5 s
SYNC_TIMEOUT_S = 120   # the install sync takes ~9 s; room for a loaded machine


class Kit:
    """Programmatic use (tests): Kit(keys, cases).start(); kit.run(); kit.stop()."""

    def __init__(self, keys_dir, cases_dir, heap=None, log=None, out=None):
        self.now0 = int(time.time())
        self.keys = load_keys(keys_dir, self.now0)
        self.trust_body = trust_body(self.keys)
        self.manifest, self.cases = cc.load_cases(cases_dir)
        self.window = None                # the validator's qr_window_s, once started
        self.width = max(len(c.name) + (3 if len(c.expect) > 1 else 0) for c in self.cases)
        self.heap = heap
        self.log = log
        self.out = out or (lambda line: None)
        self.board = None
        self._tmp = None
        self.trust_version = None
        self.sync_s = None

    def start(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="brt-conformance-")
        kw = {"heap": self.heap} if self.heap else {}
        self.board = SimBoard(self._tmp.name, fresh=True, log=self.log, **kw)
        self.board.start()
        self.window = self.board.world.config()["qr_window_s"]
        self.install_trust()
        return self

    def stop(self):
        if self.board is not None:
            self.board.stop()
            self.board = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def install_trust(self):
        """The partner's keys as the validator's whole trust list: a bundle signed by the
        operator key, put on the depot host, taken by the validator at a sync."""
        b = self.board
        store = b.depot_store
        version = store.latest_bundles().get(hb.TRUST, (0, 0))[0] + 1
        raw = hb.sign_bundle(hb.TRUST, version, self.trust_body, b.world.keys["operator"],
                             b.now())
        store.add_bundle(hb.TRUST, version, raw)
        t0 = time.monotonic()
        try:
            b.sync(SYNC_TIMEOUT_S)
        except SimError as e:
            raise SimError("%s; the validator's last console lines:\n  %s"
                           % (e, "\n  ".join(b.console[-12:]))) from None
        self.sync_s = time.monotonic() - t0
        have = {}
        for dev in store.devices():
            if dev["device_id"] == b.world.device_id:
                have = dev["have"] or {}
        if have.get(str(hb.TRUST)) != version:
            raise SimError("the validator did not install the partner trust list v%d at the "
                           "depot sync (it reports %r)" % (version, have))
        self.trust_version = version

    # --- cases ------------------------------------------------------------------------------
    def _present(self, case, index, expected):
        b = self.board
        if case.channel == "qr":
            text = case.qr_text(b.now())
            t0 = time.monotonic()
            d = b.scan(text, label=case.name)
            r = rep.Result(case, index, expected, d, time.monotonic() - t0,
                           cc.limits_qr(text))
            self._clock_limits(r, cc.token_of_qr(text))
            return r
        seen, failed = [], []

        def answer(challenge):
            # runs in the device host's thread: an error here must not pass as a phone fault
            seen.append(bytes(challenge))
            try:
                return case.nfc_answer(challenge, b.now())
            except ConformanceError as e:
                failed.append(e)
                return b""

        card = b.phone(answer_fn=answer, chunk=case.chunk)
        if case.select_answer is not None:
            card.handler = _select_answer(card.handler, case.select_answer)
        t0 = time.monotonic()
        d = b.tap_phone(label=case.name, card=card)
        r = rep.Result(case, index, expected, d, time.monotonic() - t0,
                       cc.limits_nfc(card.apdus), seen[0] if seen else None)
        if failed:
            raise failed[0]
        r.apdus = [[c.hex(), a.hex()] for c, a in card.apdus]
        self._clock_limits(r, cc.token_of_apdus(card.apdus))
        if r.got == cr.READER_FAULT:
            self._wait_reader("nfc")
        return r

    def _clock_limits(self, r, token):
        """For a tap refused for time (14, 21, 22): by how much, on the validator's clock."""
        if r.got in (14, 21, 22) and token and isinstance(r.decision.get("t"), int):
            r.limits += cc.clock_limits(token, r.decision["t"], self.window)

    def _wait_reader(self, part):
        """A reader fault puts the reader out of service until the validator's retry
        (every 5 s) brings it back: wait for that before the next case."""
        time.sleep(1.2)                 # at least one @@STATUS after the decision
        t_end = time.monotonic() + FAULT_WAIT_S
        while part in (self.board.status.get("faults") or []):
            if time.monotonic() > t_end:
                raise SimError("the validator's %s reader did not recover within %d s"
                               % (part, FAULT_WAIT_S))
            time.sleep(0.2)

    def run_case(self, case):
        # every case is a new journey: past anti-passback (passback_s) since the last one
        self.board.advance(self.board.world.config()["passback_s"] + 1)
        out = []
        for i, expected in enumerate(case.expect, 1):
            r = self._present(case, i, expected)
            out.append(r)
            self.out(r.line(self.width))
            for line in r.details():
                self.out(line)
        return out

    def run(self, only=None):
        results = []
        for case in self.cases:
            if only and case.name not in only:
                continue
            results += self.run_case(case)
        return results

    def info(self):
        return {"kit": "brt-conformance 1", "device_id": self.board.world.device_id,
                "trust_version": self.trust_version,
                "sync_s": round(self.sync_s, 1) if self.sync_s else None,
                "keys": [{"file": k.source, "kid": k.kid.hex(), "not_before": k.not_before,
                          "not_after": k.not_after, "usage": k.usage} for k in self.keys]}


def _select_answer(handler, rsp):
    """The phone app's APDU handler, but SELECT answered with `rsp` (a partner's app bug)."""
    def process(apdu):
        if bytes(apdu[:2]) == b"\x00\xa4":
            handler(apdu)               # the app still sees the SELECT (it is selected)
            return rsp
        return handler(apdu)
    return process


def add_parser(sub):
    c = sub.add_parser("conformance", help="a wallet partner's conformance kit "
                       "(docs/conformance.md)",
                       description="Installs the partner's issuer keys on a fresh simulated "
                       "validator (a trust list through a depot sync) and runs every case "
                       "through the real firmware. Exit 0: every case as expected; 1: not; "
                       "2: the kit could not run. Guide: docs/conformance.md; a starter "
                       "pack: python -m host.tokens starter DIR.")
    c.add_argument("--keys", required=True, help="folder of issuer public keys (PEM or "
                   "COSE_Key, optional keys.json)")
    c.add_argument("--cases", required=True, help="folder with cases.json and its files")
    c.add_argument("--junit", default="build/conformance/junit.xml", help="JUnit XML out (default %(default)s)")
    c.add_argument("--json", default="build/conformance/results.json", help="JSON out (default %(default)s)")
    c.add_argument("--only", action="append", metavar="NAME", help="run only this case (repeatable)")
    c.add_argument("--verbose", action="store_true", help="the validator's console too")
    return c


def run(args, out=sys.stdout, err=sys.stderr):
    """`python -m sim conformance`; returns the exit code (0 all as expected, 1 not, 2 error)."""
    def say(line):
        out.write(line + "\n")
        out.flush()

    log = (lambda line: err.write("  | %s\n" % line)) if args.verbose else None
    try:
        kit = Kit(args.keys, args.cases, heap=args.heap, log=log, out=say)
    except ConformanceError as e:
        err.write("conformance: %s\n" % e)
        return 2
    if args.only:
        missing = set(args.only) - {c.name for c in kit.cases}
        if missing:
            err.write("conformance: no case named %s\n" % ", ".join(sorted(missing)))
            return 2
    say("BRT conformance kit: %d issuer key(s) from %s, %d case(s) from %s%s"
        % (len(kit.keys), args.keys, len(kit.cases), args.cases,
           " (running %d: --only)" % len(set(args.only)) if args.only else ""))
    valid_until = kit.manifest.get("valid_until")
    if isinstance(valid_until, int) and valid_until < kit.now0:
        say("note: this case pack says it holds until %s: regenerate it (docs/conformance.md)"
            % time.strftime("%Y-%m-%d", time.gmtime(valid_until)))
    try:
        kit.start()
        say("validator %s: trust list v%d (the partner's keys only) installed by a depot "
            "sync in %.1f s" % (kit.board.world.device_id, kit.trust_version, kit.sync_s))
        for k in kit.keys:
            say("  " + k.describe())
        results = kit.run(args.only)
        info = kit.info()
    except (SimError, ConformanceError) as e:
        err.write("conformance: %s\n" % e)
        return 2
    finally:
        kit.stop()
    rep.write_json(args.json, results, info)
    rep.write_junit(args.junit, results)
    say(rep.summary_line(results))
    say("JUnit XML: %s, JSON: %s" % (pathlib.Path(args.junit), pathlib.Path(args.json)))
    return 0 if all(r.ok for r in results) else 1
