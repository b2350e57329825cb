"""`make bench` / `python -m bench [name ...]`: run every bench/bench_*.py, print one table,
write the same figures to build/bench.json.

Each module defines `run()` returning a list of rows:
    {"group": "tokens", "name": "ES256 verify (MicroPython)", "value": 4.1, "unit": "ms",
     "note": "median of 200"}
Figures are medians (or stated otherwise) measured side by side in one run; anything
about the ESP32 that is modelled from the unix port says so in its note.
"""

import importlib
import json
import pathlib
import platform
import sys
import time
import traceback

HERE = pathlib.Path(__file__).resolve().parent
OUT = HERE.parent / "build" / "bench.json"


def _fmt(v):
    if isinstance(v, float):
        return "%.4g" % v
    return str(v)


def main(argv):
    wanted = set(argv)
    mods = sorted(p.stem for p in HERE.glob("bench_*.py"))
    rows, failed = [], []
    for m in mods:
        short = m[len("bench_"):]
        if wanted and short not in wanted and m not in wanted:
            continue
        t0 = time.perf_counter()
        try:
            got = importlib.import_module("bench." + m).run()
        except Exception:
            traceback.print_exc()
            failed.append(m)
            continue
        for r in got:
            r.setdefault("group", short)
            r.setdefault("note", "")
        rows.extend(got)
        print("[bench] %s: %d rows in %.1f s" % (m, len(got), time.perf_counter() - t0),
              file=sys.stderr)
    w = max([len(r["name"]) for r in rows] + [10])
    print("%-10s  %-*s  %12s  %-6s  %s" % ("group", w, "figure", "value", "unit", "note"))
    for r in rows:
        print("%-10s  %-*s  %12s  %-6s  %s" % (r["group"], w, r["name"], _fmt(r["value"]),
                                                r.get("unit", ""), r["note"]))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"machine": platform.platform(), "python": platform.python_version(),
                               "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                               "rows": rows, "failed": failed}, indent=1) + "\n")
    print("wrote", OUT.relative_to(HERE.parent), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
