"""Type-check firmware/ with mypy against micropython-esp32-esp32-generic-s3-stubs (the
stock ESP32_GENERIC_S3 build the reference board runs; installed by `make venv` into
.venv/mpstubs and used as the typeshed, so CPython's stdlib is *not* visible). Their
machine.UART/I2C/Pin signatures have no **kwargs, so a wrong keyword is an error
(tests/host/test_foundation.py keeps a test of that).

Errors inside the third-party stub files themselves are noise and are filtered out;
any error in a firmware file fails the check.
"""

import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
STUBS = ROOT / ".venv" / "mpstubs"


def main(argv):
    target = argv[1] if len(argv) > 1 else "firmware"
    env = dict(os.environ, MYPYPATH=str(STUBS) + os.pathsep + str(ROOT / target))
    cmd = [
        sys.executable, "-m", "mypy",
        "--custom-typeshed-dir", str(STUBS),
        "--python-version", "3.11", "--no-site-packages",
        "--explicit-package-bases", "--namespace-packages",
        "--no-error-summary", "--show-error-codes", "--hide-error-context",
        # the cache only for the project's own tree: mypy's cache keys on module names,
        # and a scratch copy of firmware/ elsewhere has the same names
        "--cache-dir", str(ROOT / ".mypy_cache") if target == "firmware" else os.devnull,
        "--check-untyped-defs",
        "--disable-error-code", "import-untyped",
        target,
    ]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env)
    mine = [ln for ln in r.stdout.splitlines()
            if ln.startswith(target + "/") and ": error:" in ln]
    for ln in mine:
        print(ln)
    if r.returncode not in (0, 1):
        print(r.stdout, r.stderr)
        return 2
    print("typecheck %s against micropython-esp32-esp32-generic-s3-stubs: %d errors"
          % (target, len(mine)))
    return 1 if mine else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
