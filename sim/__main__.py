"""`make sim` / `python -m sim`: the validator simulator.

    python -m sim                      the terminal UI (Textual)
    python -m sim tap --wallet NAME    headless: an NFC tap, one JSON decision per line
    python -m sim qr 'TEXT' | --wallet NAME
    python -m sim scenario FILE [--keep-state]   (fresh state unless --keep-state)
    python -m sim conformance --keys DIR --cases DIR   a wallet partner's kit
    python -m sim fleet [--full] [--seed N] [--store URL]   a fleet day, reconciled
Options: --state DIR (default build/sim), --fresh (new flash and keys), --heap SIZE.
"""

import argparse
import sys

from host import cliargs
from sim import world as simworld
from sim.launcher import SIM_HEAP


# --times: how many taps (0 or fewer would run nothing and say nothing)
_times = cliargs.int_in(1, 1000, "count of taps")


def build_parser():
    p = argparse.ArgumentParser(prog="python -m sim", description=__doc__.split("\n")[0])
    p.add_argument("--state", default=None, help="state directory (default build/sim)")
    p.add_argument("--fresh", action="store_true", help="start from a new flash image")
    p.add_argument("--heap", default=SIM_HEAP, help="MicroPython heap (default %s)" % SIM_HEAP)
    sub = p.add_subparsers(dest="cmd")
    t = sub.add_parser("tap", help="NFC tap of a demo wallet")
    t.add_argument("--wallet", required=True, choices=simworld.WALLET_ORDER)
    t.add_argument("--times", type=_times, default=1)
    q = sub.add_parser("qr", help="the scanner reads a QR text (or a demo wallet's code)")
    q.add_argument("text", nargs="?")
    q.add_argument("--wallet", choices=simworld.WALLET_ORDER)
    q.add_argument("--times", type=_times, default=1)
    s = sub.add_parser("scenario", help="run a scenario file (from a fresh state)")
    s.add_argument("file")
    s.add_argument("--keep-state", action="store_true",
                   help="run on the state folder as it is (default: a fresh one, so the "
                        "result does not depend on earlier runs)")
    from sim import conformance
    conformance.add_parser(sub)
    from sim import fleet
    fleet.add_parser(sub)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.cmd is None:
        from sim import ui
        return ui.main(args.state, args.fresh)
    if args.cmd == "fleet":
        from sim import fleet
        return fleet.run(args)
    if args.cmd == "conformance":
        from sim import conformance
        return conformance.run(args)
    from sim import headless
    return headless.run(args)


if __name__ == "__main__":
    sys.exit(main())
