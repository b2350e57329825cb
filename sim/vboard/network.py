# The virtual board's `network` module (MicroPython, simulator only): WLAN whose
# association state lives in the device host, so the simulator can put the bus in and
# out of the depot's Wi-Fi range. Sockets are the unix port's own, to loopback: a
# validator "at the depot" talks real HTTP to the depot host on 127.0.0.1.
import struct

from machine import OP_WLAN, _call  # through machine: the one module holding the link
from micropython import const

STA_IF = const(0)
AP_IF = const(1)

STAT_IDLE = const(1000)
STAT_CONNECTING = const(1001)
STAT_WRONG_PASSWORD = const(202)
STAT_NO_AP_FOUND = const(201)
STAT_GOT_IP = const(1010)


class WLAN:
    def __init__(self, interface_id=STA_IF):
        self._if = interface_id

    def active(self, is_active=None):
        v = 0xFF if is_active is None else (1 if is_active else 0)
        return bool(_call(OP_WLAN, bytes((0, v)))[0])

    def connect(self, ssid=None, key=None, **kw):
        _call(OP_WLAN, b"\x01" + (ssid or "").encode() + b"\x00" + (key or "").encode())

    def disconnect(self):
        _call(OP_WLAN, b"\x03")

    def _status(self):
        r = _call(OP_WLAN, b"\x02")
        up, code = struct.unpack(">BH", r[:3])
        return up, code, str(bytes(r[3:]), "utf-8")

    def isconnected(self):
        return bool(self._status()[0])

    def status(self, param=None):
        if param == "rssi":
            return -55 if self._status()[0] else -100
        return self._status()[1]

    def ifconfig(self, cfg=None):
        ip = self._status()[2]
        return (ip, "255.255.255.0", "10.0.0.1", "10.0.0.1")

    def ipconfig(self, key):
        if key == "addr4":
            return (self._status()[2], "255.255.255.0")
        return None

    def config(self, key=None, **kw):
        if key == "mac":
            import machine
            return machine.unique_id()
        return None

    def scan(self):
        return []


def hostname(name=None):
    return "brt-validator"
