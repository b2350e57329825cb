"""Provisioning figures: installing the firmware through the raw REPL (raw-paste mode)
to the real firmware on the virtual serial device (sim/serialdev.py, a pty), measured
side by side: a full install, a re-run with nothing to send, and a session start.

The pty has no baud rate, so the ESP32 figure is an *estimate*: the bytes the tool wrote
to the port (counted here) at 115,200 baud 8N1 (11,520 bytes/s), plus nothing for the
board's own work (hashing, LittleFS writes) — a lower bound for a CP210x/CH340 board.
"""

import hashlib
import statistics
import tempfile
import time
from pathlib import Path

from host.provisioning import install as installmod
from host.provisioning.link import Link
from sim.serialdev import SerialDevice
from tests.host.prov_support import build_firmware

UART_BYTES_S = 115200 / 10


def run():
    rows = []
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        fw = build_firmware(d / "fw")
        total = sum(p.stat().st_size for p in fw.rglob("*") if p.is_file())
        full, again, start, wire = [], [], [], []
        for i in range(3):
            with SerialDevice(d / ("flash%d.img" % i)) as dev:
                time.sleep(0.3)
                with Link(dev.port) as link:
                    t0 = time.perf_counter()
                    link.fresh()
                    start.append(time.perf_counter() - t0)
                    sent = [0]
                    w = link.ser.write

                    def counting(b, w=w, sent=sent):
                        sent[0] += len(b)
                        return w(b)
                    link.ser.write = counting
                    t0 = time.perf_counter()
                    res = installmod.install(link, fw, say=lambda m: None)
                    full.append(time.perf_counter() - t0)
                    wire.append(sent[0])
                    t0 = time.perf_counter()
                    installmod.install(link, fw, say=lambda m: None)
                    again.append(time.perf_counter() - t0)
        assert res["fw"] == hashlib.sha256((fw / "manifest.json").read_bytes()).hexdigest()
        n = res["files"]
        rows.append({"name": "install, %d files %d bytes (pty)" % (n, total),
                     "value": statistics.median(full), "unit": "s",
                     "note": "median of 3 fresh boards, x64 build, includes hash verify"})
        rows.append({"name": "install re-run, nothing to send (pty)",
                     "value": statistics.median(again), "unit": "s",
                     "note": "median of 3; hashes every file on the board"})
        rows.append({"name": "full / re-run ratio", "value": statistics.median(full) /
                     statistics.median(again), "unit": "x", "note": "same runs"})
        rows.append({"name": "session start (Ctrl-C, raw REPL, soft reset)",
                     "value": statistics.median(start), "unit": "s", "note": "median of 3"})
        rows.append({"name": "bytes written to the port for a full install",
                     "value": statistics.median(wire), "unit": "B",
                     "note": "%.2f x the firmware size (base64 + commands)"
                     % (statistics.median(wire) / total)})
        rows.append({"name": "ESP32 full install at 115200 baud (estimate)",
                     "value": statistics.median(wire) / UART_BYTES_S, "unit": "s",
                     "note": "estimate: wire bytes / 11520 B/s; board CPU and flash time not "
                             "included (lower bound)"})
    return rows
