"""The audit log: append-only JSON lines, one per step, fsynced — who, when, which device,
which firmware and config (hashes), and what happened. Never holds a secret."""

import getpass
import json
import os
import socket
import time


class Audit:
    def __init__(self, path, technician=None):
        self.path = path
        self.technician = technician or getpass.getuser()
        self.device = None
        self.fw = None
        self.cfg = None

    def record(self, step, ok, **detail):
        entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                 "technician": self.technician, "host": socket.gethostname(),
                 "device": self.device, "fw": self.fw, "cfg": self.cfg,
                 "step": step, "ok": ok}
        entry.update(detail)
        line = json.dumps(entry, sort_keys=True) + "\n"
        d = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(d, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        return entry


def read(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]
