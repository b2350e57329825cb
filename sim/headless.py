"""Headless runs of the simulated validator (no UI), for scripts, CI and wallet partners.

    python -m sim tap --wallet regular [--times 2]
    python -m sim qr 'BRT1:...'            # any QR text, e.g. a partner wallet's own
    python -m sim qr --wallet concession
    python -m sim scenario FILE             # a scripted day, see docs/validator.md; from
                                            # a fresh state unless --keep-state

Each decision is printed as one JSON object per line on stdout: answer, reason (code and
name), fare, channel, the journal sequence number and the timings by stage in ms.
Exit code 0; 1 if a scenario's `expect` failed; 2 for usage or simulator errors.
"""

import json
import shlex
import sys

from sim import world as simworld
from sim.launcher import SimBoard, SimError

ANSWER_NAMES = {0: "accepted", 1: "rejected", 2: "already-paid"}


class ScenarioError(Exception):
    """A scenario line that cannot be run (file name and line number in the message)."""


def emit(d, out):
    out.write(json.dumps(d, sort_keys=True) + "\n")
    out.flush()


def _check(d, want, where):
    """want: ["accepted"|"rejected"|"already-paid", optional reason code or name]."""
    if not want:
        raise ScenarioError("%s: expect needs an answer" % where)
    got = ANSWER_NAMES.get(d.get("answer"), "?")
    if got != want[0]:
        return "%s: expected %s, got %s (reason %s %s)" % (
            where, want[0], got, d.get("reason"), d.get("reason_name"))
    if len(want) > 1:
        r = " ".join(want[1:])
        if r != str(d.get("reason")) and r != d.get("reason_name"):
            return "%s: expected reason %s, got %s %s" % (where, r, d.get("reason"),
                                                          d.get("reason_name"))
    return None


def run_scenario(board, lines, out, name="scenario"):
    """Run scenario lines; returns the list of failed expectations (strings)."""
    failures = []
    last = None
    for no, raw in enumerate(lines, 1):
        where = "%s:%d" % (name, no)
        stripped = raw.strip()
        if stripped.startswith("qr-text"):
            # the text is taken verbatim (a QR may contain '#' and quotes)
            words = ["qr-text", stripped[len("qr-text"):].strip()]
        else:
            line = stripped.split("#", 1)[0].strip()
            if not line:
                continue
            try:
                words = shlex.split(line)
            except ValueError as e:
                raise ScenarioError("%s: %s" % (where, e)) from None
        cmd, args = words[0], words[1:]
        if cmd in ("tap", "qr"):
            if len(args) != 1 or args[0] not in simworld.WALLETS:
                raise ScenarioError("%s: %s needs a wallet: %s"
                                    % (where, cmd, ", ".join(simworld.WALLET_ORDER)))
            last = board.tap(args[0]) if cmd == "tap" else board.scan_wallet(args[0])
            emit(last, out)
        elif cmd == "qr-text":
            if not args or not args[0]:
                raise ScenarioError("%s: qr-text needs the text" % where)
            last = board.scan(args[0])
            emit(last, out)
        elif cmd == "expect":
            if last is None:
                raise ScenarioError("%s: expect before any tap" % where)
            f = _check(last, args, where)
            if f:
                failures.append(f)
        elif cmd == "advance":
            board.advance(_int(args, where))
        elif cmd == "clock":
            if args == ["unset"]:
                board.unset_clock()
            elif args == ["now"]:
                board.set_clock(board.now())
            else:
                board.set_clock(board.clock() + _int(args, where))
        elif cmd == "power-cut":
            board.power_cut()
        elif cmd == "depot":
            if args not in (["on"], ["off"]):
                raise ScenarioError("%s: depot on|off" % where)
            board.depot(args == ["on"])
        elif cmd == "revoke":
            if len(args) != 1 or args[0] not in simworld.WALLETS:
                raise ScenarioError("%s: revoke needs a wallet" % where)
            board.revoke(args[0])
        elif cmd == "sync":
            # the bus drives into the depot and stays until a sync session has finished
            try:
                board.sync(_int(args, where) if args else 60)
            except SimError as e:
                raise ScenarioError("%s: %s" % (where, e)) from None
        elif cmd == "status":
            emit({"status": board.status}, out)
        else:
            raise ScenarioError("%s: unknown command %r" % (where, cmd))
    return failures


def _int(args, where):
    try:
        (v,) = args
        return int(v)
    except ValueError:
        raise ScenarioError("%s: needs one integer (seconds)" % where) from None


def run(args, out=sys.stdout, err=sys.stderr):
    """args: the parsed argparse namespace of `python -m sim <cmd>`; returns an exit code."""
    # a scenario starts from a fresh state (keys, flash, depot) unless told to keep it
    fresh = args.fresh or (args.cmd == "scenario" and not getattr(args, "keep_state", False))
    board = SimBoard(args.state, heap=args.heap, fresh=fresh)
    try:
        if args.cmd == "scenario":
            try:
                with open(args.file, encoding="utf-8") as f:
                    lines = f.read().splitlines()
            except OSError as e:
                err.write("sim: cannot read scenario: %s\n" % e)
                return 2
        board.start()
        if args.cmd == "tap":
            for _ in range(args.times):
                emit(board.tap(args.wallet), out)
            return 0
        if args.cmd == "qr":
            if (args.text is None) == (args.wallet is None):
                err.write("sim qr: give either the QR text or --wallet\n")
                return 2
            for _ in range(args.times):
                d = board.scan(args.text) if args.text is not None else \
                    board.scan_wallet(args.wallet)
                emit(d, out)
            return 0
        failures = run_scenario(board, lines, out, args.file)
        for f in failures:
            err.write("sim: %s\n" % f)
        return 1 if failures else 0
    except (SimError, ScenarioError) as e:
        err.write("sim: %s\n" % e)
        return 2
    finally:
        board.stop()
