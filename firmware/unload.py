# Giving a module's bytecode back to the heap: code that runs at boot or at the depot only
# (bundle checks, journal recovery, config parsing) is imported when needed and forgotten
# afterwards, so taps do not pay for it in heap. MicroPython keeps a module alive through
# sys.modules, through the attribute its package got when it was imported, and through
# references to its objects; the first two are dropped here, the caller keeps no others.
import sys


def forget(*names):
    """Drop modules `names` (dotted) from sys.modules and from their package."""
    for n in names:
        if n in sys.modules:
            del sys.modules[n]
        dot = n.rfind(".")
        if dot > 0:
            pkg = sys.modules.get(n[:dot])
            if pkg is not None:
                try:
                    delattr(pkg, n[dot + 1:])
                except (AttributeError, KeyError):  # KeyError: MicroPython, if absent
                    pass
