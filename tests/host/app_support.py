"""Shared by the validator's host tests: the MicroPython worker (app_worker_mp.py) running
the real boot path and decision core on the flash model, driven from CPython."""

import json

from tests.support.mp import MPWorker

NOW = 1_800_000_000          # 2027-01-15: a fixed world time, so the tests are repeatable
WORKER = "tests/host/app_worker_mp.py"
ACC, REJ, PAID = 0, 1, 2
# 256K, not 128K: this worker imports the whole boot path from source - config, bundles
# (re-verifying every installed bundle), journal, tokens, app, and the simulator's flash
# model in Python - ~110 KB of bytecode before the first tap (bench 'tap' reports the
# figures). test_app_soak.py runs the decision core alone, compiled, and says what it needs.
# The power-cut test also "reboots" many times inside one process, where a real board
# starts from an empty heap: the margin (320K) absorbs that fragmentation.
HEAP = "320K"


class Board:
    """The worker plus the bookkeeping the assertions need."""

    def __init__(self, tmp, world, now=NOW):
        self.tmp = tmp
        self.world = world
        prov = tmp / "provision"
        prov.mkdir(exist_ok=True)
        for name, data in world.data_files(now).items():
            (prov / name).write_bytes(data)
        self.prov = prov
        self.image = tmp / "flash.img"
        self.w = MPWorker(WORKER, heap=HEAP, paths=["sim/vboard"])
        self.console = []   # other lines the worker printed

    def ask(self, **req):
        p = self.w.proc
        p.stdin.write(json.dumps(req) + "\n")
        p.stdin.flush()
        while True:
            line = p.stdout.readline()
            if not line:
                raise AssertionError("micropython worker died:\n" + p.stderr.read())
            if line.startswith("@@J "):
                break
            self.console.append(line.rstrip("\n"))
        ans = json.loads(line[4:])
        assert "error" not in ans, ans["error"]
        return ans

    def boot(self, **flash):
        """Power on; flash: flash_size/vfs_size for a small journal (default layout else)."""
        return self.ask(op="boot", image=str(self.image), provision=str(self.prov), **flash)

    def qr(self, text, now=NOW, clock_ok=True):
        return self.ask(op="qr", text=text, now=now, clock_ok=clock_ok)

    def nfc(self, wallet, challenge, now=NOW, clock_ok=True, phone_now=None):
        payload = self.world.nfc_answer(wallet, challenge, now if phone_now is None else phone_now)
        return self.ask(op="nfc", payload=payload.hex(), challenge=challenge.hex(), now=now,
                        clock_ok=clock_ok)

    def records(self, ack=True):
        """Every unsent record (acknowledging them page by page, as the depot would)."""
        out = []
        while True:
            page = self.ask(op="records", limit=12, ack=ack)["records"]
            if not page:
                return out
            out.extend(page)
            if not ack:
                return out

    def close(self):
        self.w.close()
