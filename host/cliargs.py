"""argparse types shared by the command lines (host tools and `python -m sim`): a number
outside its range is a one-line usage error (exit 2), never a traceback later on."""

import argparse


def int_in(lo, hi, what="number"):
    """An argparse `type` accepting integers lo..hi."""
    def parse(text):
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError("%r is not a %s" % (text, what)) from None
        if not lo <= v <= hi:
            raise argparse.ArgumentTypeError("%s %d is not in %d..%d" % (what, v, lo, hi))
        return v
    return parse


port = int_in(0, 65535, "port")   # 0: any free port
