# The virtual board's `socket` (MicroPython, simulator only): the unix port's sockets,
# gated by the board's Wi-Fi. On MICROPYPATH=firmware:sim/vboard this replaces the
# built-in `socket` (an extensible built-in); everything else is the built-in's.
#
# On the board a socket reaches the depot only through the Wi-Fi station: while it is
# not connected (no IP: network.WLAN(STA_IF).isconnected() is False) lwIP has no route
# and connect() fails with EHOSTUNREACH (lwIP err_to_errno(ERR_RTE)). Here the depot host
# is on loopback, so without this gate a validator "out of range" would still sync.
# Without a device host (BRT_DEVHOST unset) there is no board, and sockets are plain.
# Not modelled: a link that drops in the middle of a connection keeps working on
# loopback (on the board it stalls until the firmware's own deadline ends it).
import sys

_p = sys.path
sys.path = []
try:
    import socket as _real  # the unix port's built-in socket
finally:
    sys.path = _p
del _p

for _n in dir(_real):
    if not _n.startswith("__") and _n != "socket":
        globals()[_n] = getattr(_real, _n)
del _n

_EHOSTUNREACH = 113


def _wifi_up():
    import os
    if not os.getenv("BRT_DEVHOST"):
        return True
    import machine
    try:
        return bool(machine._call(machine.OP_WLAN, b"\x02")[0])
    except OSError:
        return False  # a board without Wi-Fi (sim/bareboard.py)


class socket:
    """A unix-port socket whose connect() needs the board's Wi-Fi; select.poll (the
    board-like one in sim/vboard/select.py) polls the socket inside."""

    def __init__(self, af=_real.AF_INET, type=_real.SOCK_STREAM, proto=0):
        self._s = _real.socket(af, type, proto)

    def connect(self, addr):
        if not _wifi_up():
            raise OSError(_EHOSTUNREACH, "EHOSTUNREACH (Wi-Fi not connected)")
        return self._s.connect(addr)

    def __getattr__(self, name):
        return getattr(self._s, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._s.close()
