"""Journal figures (issue 4): flash per tap, erases/programming per append, modelled append
latency, taps per 2 MiB, recovery of a full journal, and the LittleFS-file alternative.

Everything runs inside MicroPython on the flash model (bench/mp_journal.py). "modelled"
figures come from the flash model's time model (typical SPI NOR datasheet values: sector
erase 45 ms, page program 0.7 ms per page op, reads ~10 MB/s + 15 us per call) — they are
what the ESP32's flash would be busy for, not a measurement on a chip. CPU figures are
measured here on the unix port; ESP32 CPU estimates multiply by 170 (DESIGN §2, typical
bytecode; the CRC is viper, which scales better, so this overestimates).
"""

import json

from tests.support.mp import run_mp

ESP32_FACTOR = 170


def run():
    r = run_mp(["bench/mp_journal.py"], heap="8M", paths=["sim/vboard"], timeout=600)
    if r.returncode:
        raise RuntimeError("bench/mp_journal.py failed:\n" + r.stdout + r.stderr)
    d = json.loads(r.stdout.strip().splitlines()[-1])
    ok8, ok16, rej = d["rec"]
    s, sn, lf, rc = d["steady"], d["steady_nomaint"], d["littlefs"], d["recovery"]
    two = 2 * 1024 * 1024
    rows = [
        {"name": "tap record (CBOR, accepted, 8-byte ids)", "value": ok8, "unit": "B",
         "note": "app.record encoder; 16-byte ids: %d B, rejected w/o ids: %d B" % (ok16, rej)},
        {"name": "flash per tap record", "value": round(two / d["fit2m_8"], 1), "unit": "B",
         "note": "2 MiB / taps that fit: record + 13 B header/CRC + sector header share"},
        {"name": "taps per 2 MiB journal (61-byte records)", "value": d["fit2m_8"],
         "unit": "taps", "note": "filled until JournalFull (2 ack sectors + 510 data)"},
        {"name": "taps per 2 MiB journal (79-byte records)", "value": d["fit2m_16"],
         "unit": "taps", "note": "16-byte wallet and pass ids"},
        {"name": "taps in sim layout journal (1.5 MiB, 79 B)", "value": rc["taps"],
         "unit": "taps", "note": "simulator splits 2 MiB: vfs 512 KiB + journal 1.5 MiB"},
        {"name": "erases per append (incl. maintain)", "value": round(s["erases_all"], 4),
         "unit": "", "note": "steady state, 5000 appends, ring wrapping, acks every 200"},
        {"name": "erases inside append() (maintain called)", "value": s["erases"],
         "unit": "", "note": "pre-erased by maintain() between taps"},
        {"name": "bytes programmed per append", "value": round(s["prog_bytes_all"], 1),
         "unit": "B", "note": "%.2f page programs per append" % s["prog_ops"]},
        {"name": "append latency p50 (modelled ESP32 flash)", "value": s["p50"] / 1000,
         "unit": "ms", "note": "time model; maintain() between taps"},
        {"name": "append latency p99 (modelled ESP32 flash)", "value": s["p99"] / 1000,
         "unit": "ms", "note": "bar: <= 25 ms"},
        {"name": "append latency max (modelled ESP32 flash)", "value": s["max"] / 1000,
         "unit": "ms", "note": "a record crossing a page = 2 page programs"},
        {"name": "append latency p99, maintain() never called", "value": sn["p99"] / 1000,
         "unit": "ms", "note": "modelled; 1 append in ~55 pays a sector erase (max %.1f ms)"
         % (sn["max"] / 1000)},
        {"name": "append CPU here (median)", "value": s["cpu_p50"], "unit": "us",
         "note": "unix port, incl. flash model; ESP32 estimate ~%.1f ms (x%d)"
         % (s["cpu_p50"] * ESP32_FACTOR / 1000, ESP32_FACTOR)},
        {"name": "heap allocated per append", "value": d["alloc"], "unit": "B",
         "note": "gc.mem_alloc delta, unix port (64-bit objects)"},
        {"name": "recovery of a full journal: CPU here", "value": rc["cpu_us"] / 1000,
         "unit": "ms", "note": "mount() after a cut, 1.5 MiB full (%d taps), median of 5; "
         "flash model's share %.1f ms" % (rc["taps"], rc["model_us"] / 1000)},
        {"name": "recovery: modelled flash read time", "value": rc["flash_us"] / 1000,
         "unit": "ms", "note": "%d reads, %d bytes" % (rc["read_ops"], rc["read_bytes"])},
        {"name": "recovery: ESP32 estimate", "value": round(
            (max(0, rc["cpu_us"] - rc["model_us"]) * ESP32_FACTOR + rc["flash_us"]) / 1000),
         "unit": "ms", "note": "estimate: (CPU here - model share) x%d + modelled reads"
         % ESP32_FACTOR},
        {"name": "alternative: LittleFS file, erases/append", "value": round(lf["erases"], 2),
         "unit": "", "note": "open('ab')/write/close per tap on the flash model"},
        {"name": "alternative: LittleFS bytes programmed/append",
         "value": round(lf["prog_bytes"]), "unit": "B", "note": "vs the raw log above"},
        {"name": "alternative: LittleFS append p50 / p99 (modelled)",
         "value": lf["p50"] / 1000, "unit": "ms", "note": "p99 %.1f ms, max %.1f ms"
         % (lf["p99"] / 1000, lf["max"] / 1000)},
    ]
    for row in rows:
        row["group"] = "journal"
    return rows
