"""`make verify-vectors VECTORS=<file>`: the firmware's ES256 verifier (firmware/tokens/p256.py),
run under MicroPython, over a test-vector file in the Wycheproof JSON layout for
ecdsa_secp256r1_sha256_p1363 (testGroups[].publicKey.uncompressed, tests[].msg, .sig,
.result valid/invalid/acceptable, all hex).

One long-lived micropython process answers one vector per line (no process per vector).
Prints `N passed, M failed` (and each failure) and exits 1 on any mismatch, 2 on a file it
cannot read. `acceptable` vectors pass either way (Wycheproof's meaning).
"""

import argparse
import json
import pathlib
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.support.mp import MPWorker  # noqa: E402

DEFAULT = ROOT / "tests" / "vectors" / "ecdsa_p256_sha256_p1363.json"

# runs inside MicroPython: "pubhex msghex sighex" -> "1" valid / "0" invalid / "E <error>"
WORKER = r'''
import sys
from binascii import unhexlify
from tokens import p256
while True:
    line = sys.stdin.readline()
    if not line:
        break
    try:
        pub, msg, sig = [unhexlify(x) for x in line.strip("\n").split(" ")]
        print("1" if p256.verify(pub, msg, sig) else "0")
    except Exception as e:
        print("E", repr(e))
'''


class VectorFileError(Exception):
    pass


def load(path):
    try:
        doc = json.loads(pathlib.Path(path).read_text())
        cases = []
        for grp in doc["testGroups"]:
            pub = grp["publicKey"]["uncompressed"]
            for t in grp["tests"]:
                cases.append((t["tcId"], pub, t["msg"], t["sig"], t["result"],
                              t.get("comment", "")))
        return cases
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise VectorFileError("verify-vectors: cannot read %s as Wycheproof ECDSA JSON: %s"
                              % (path, e)) from None


def run(cases, heap="128K"):
    """[(tcId, expected, got, comment)] for every mismatch, and the count run."""
    bad = []
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(WORKER)
        script = f.name
    w = MPWorker(script, heap=heap)
    try:
        for tc, pub, msg, sig, result, comment in cases:
            # an odd-length hex string cannot be bytes: the verifier would never see it
            if any(len(x) % 2 for x in (pub, msg, sig)):
                got = "0"
            else:
                got = w.ask("%s %s %s" % (pub or "", msg or "", sig or ""))
            ok = (got == "1" and result in ("valid", "acceptable")) or \
                 (got == "0" and result in ("invalid", "acceptable"))
            if not ok:
                bad.append((tc, result, got, comment))
    finally:
        w.close()
        pathlib.Path(script).unlink()
    return bad


def main(argv=None):
    ap = argparse.ArgumentParser(prog="verify_vectors", description=__doc__.split("\n")[0])
    ap.add_argument("vectors", nargs="?", default=str(DEFAULT))
    ap.add_argument("--heap", default="128K")
    a = ap.parse_args(argv)
    try:
        cases = load(a.vectors)
    except VectorFileError as e:
        print(e, file=sys.stderr)
        return 2
    bad = run(cases, a.heap)
    for tc, want, got, comment in bad:
        print("FAIL tcId %s: expected %s, verifier said %s (%s)" % (tc, want, got, comment))
    print("%d passed, %d failed" % (len(cases) - len(bad), len(bad)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
