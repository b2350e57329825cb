"""I2C buses of the virtual board. A device implements `i2c_write(data, stop)` and
`i2c_read(n)`; an address nobody answers gives ENODEV, as the ESP32 port reports a
missing acknowledge."""

import errno
import threading

from .wire import LinkOSError


class VirtualI2C:
    def __init__(self, bus_id):
        self.id = bus_id
        self.devices = {}
        self._lock = threading.Lock()
        self.log = []

    def attach(self, addr, device):
        self.devices[addr] = device

    def detach(self, addr):
        self.devices.pop(addr, None)

    def _dev(self, addr):
        dev = self.devices.get(addr)
        if dev is None or getattr(dev, "silent", False):
            raise LinkOSError(errno.ENODEV, "no ACK from 0x%02x" % addr)
        return dev

    def write(self, addr, data, stop=True):
        with self._lock:
            dev = self._dev(addr)
            self.log.append(("w", addr, bytes(data)))
            if len(self.log) > 4000:
                del self.log[:1000]
            dev.i2c_write(bytes(data), stop)
            # the ESP32 port's writeto() returns the bytes written (machine_i2c.c:
            # machine_hw_i2c_transfer returns len), not the ACK count with the address
            return len(data)

    def read(self, addr, n, stop=True):
        with self._lock:
            dev = self._dev(addr)
            data = bytes(dev.i2c_read(n))
            self.log.append(("r", addr, data))
            return data

    def scan(self):
        return sorted(a for a, d in self.devices.items() if not getattr(d, "silent", False))
