"""Writes the ES256 (ECDSA P-256 / SHA-256, raw r||s) test-vector files in the Wycheproof
JSON layout (ecdsa_secp256r1_sha256_p1363): `python tests/vectors/make_vectors.py`.

Sources, each test's `comment` says which:
  - NIST CAVP FIPS 186-3 SigVer [P-256,SHA-256] (valid and invalid, with NIST's reason)
    and SigGen [P-256,SHA-256] (valid), from the pinned `cryptography-vectors` package
    (it ships no Wycheproof files, so they are converted here);
  - crafted edge cases: r, s at and beyond the range ends, high-S twins, public keys off
    the curve / at infinity / with x or y >= p / compressed, truncated and padded
    signatures, and signatures built for chosen r (x(R) >= n, so the verifier must use
    x mod n; tiny and huge r, s; Q = G and Q = -G so the additions hit P + P and P + (-P));
  - random keys and messages signed by `cryptography`, each with bit-flipped twins of
    signature, message and key.
Deterministic (fixed seed); the output is committed, so the tool is only re-run when the
sources change.
"""

import hashlib
import json
import pathlib
import random
import sys

from cryptography.hazmat.primitives.asymmetric import ec

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))
from host.tokens.keys import key_from_int, public_bytes, sign_es256  # noqa: E402

P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
A = P - 3
B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
G = (0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
     0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5)


# ---- a tiny affine reference implementation, only to craft vectors (CPython) ----
def add(p1, p2):
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    (x1, y1), (x2, y2) = p1, p2
    if x1 == x2:
        if (y1 + y2) % P == 0:
            return None
        lam = (3 * x1 * x1 + A) * pow(2 * y1, -1, P) % P
    else:
        lam = (y2 - y1) * pow(x2 - x1, -1, P) % P
    x3 = (lam * lam - x1 - x2) % P
    return x3, (lam * (x1 - x3) - y1) % P


def mul(k, pt):
    acc = None
    while k:
        if k & 1:
            acc = add(acc, pt)
        pt = add(pt, pt)
        k >>= 1
    return acc


def lift_x(x):
    a = (x ** 3 - 3 * x + B) % P
    y = pow(a, (P + 1) // 4, P)
    return (x, y) if y * y % P == a else None


def pub_hex(pt):
    return "04" + pt[0].to_bytes(32, "big").hex() + pt[1].to_bytes(32, "big").hex()


def sig_hex(r, s, size=32):
    return r.to_bytes(size, "big").hex() + s.to_bytes(size, "big").hex()


def e_of(msg):
    return int.from_bytes(hashlib.sha256(msg).digest(), "big") % N


def forge_key(msg, r, s, R):
    """Public key Q for which (r, s) is a valid signature of msg, given a point R with
    x(R) mod n == r: Q = r^-1 (s R - e G)."""
    e = e_of(msg)
    sR = mul(s, R)
    eG = mul(e, G)
    negeG = None if eG is None else (eG[0], (-eG[1]) % P)
    return mul(pow(r, -1, N), add(sR, negeG))


# ---- sources ----
def cavp(path, section, has_result):
    out, cur, on = [], {}, False
    for line in open(path):
        line = line.strip()
        if line.startswith("["):
            on = line == section
            continue
        if not on or " = " not in line:
            continue
        k, v = line.split(" = ", 1)
        cur[k] = v
        if (has_result and k == "Result") or (not has_result and k == "S"):
            out.append(cur)
            cur = {}
    return out


class Groups:
    def __init__(self):
        self.groups = {}
        self.n = 0

    def add(self, pub, msg, sig, result, comment, flags=()):
        self.n += 1
        g = self.groups.setdefault(pub, [])
        g.append({"tcId": self.n, "comment": comment, "flags": list(flags),
                  "msg": msg.hex() if isinstance(msg, bytes) else msg,
                  "sig": sig, "result": result})

    def doc(self, header):
        groups = [{"type": "EcdsaP1363Verify", "sha": "SHA-256",
                   "publicKey": {"type": "EcPublicKey", "curve": "secp256r1",
                                 "keySize": 256, "uncompressed": pub},
                   "tests": tests} for pub, tests in self.groups.items()]
        return dict(header, numberOfTests=self.n, testGroups=groups)


def build(n_random):
    vectors = ROOT / ".venv/lib/python3.11/site-packages/cryptography_vectors"
    base = next(vectors.parent.glob("cryptography_vectors")) / "asymmetric/ECDSA/FIPS_186-3"
    g = Groups()
    for t in cavp(base / "SigVer.rsp", "[P-256,SHA-256]", True):
        pub = "04" + t["Qx"].rjust(64, "0") + t["Qy"].rjust(64, "0")
        ok = t["Result"].startswith("P")
        g.add(pub, bytes.fromhex(t["Msg"]), t["R"].rjust(64, "0") + t["S"].rjust(64, "0"),
              "valid" if ok else "invalid", "CAVP SigVer: " + t["Result"])
    for t in cavp(base / "SigGen.txt", "[P-256,SHA-256]", False):
        pub = "04" + t["Qx"].rjust(64, "0") + t["Qy"].rjust(64, "0")
        g.add(pub, bytes.fromhex(t["Msg"]), t["R"].rjust(64, "0") + t["S"].rjust(64, "0"),
              "valid", "CAVP SigGen")

    rnd = random.Random(20261129)
    # range checks and malleability on one honest signature
    key = key_from_int(0xC0FFEE)
    pub = public_bytes(key).hex()
    msg = b"edge cases"
    sig = sign_es256(key, msg)
    r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
    g.add(pub, msg, sig.hex(), "valid", "honest low-S signature")
    g.add(pub, msg, sig_hex(r, N - s), "valid", "high-S twin (ECDSA accepts both)")
    for rr, ss, why in ((0, s, "r = 0"), (r, 0, "s = 0"), (N, s, "r = n"), (r, N, "s = n"),
                        (r + N, s, "r + n (x mod n must not be widened)"), (r, s + N, "s + n"),
                        (P, s, "r = p"), (2**256 - 1, s, "r = 2^256-1"),
                        (r, 2**256 - 1, "s = 2^256-1"), (0, 0, "r = s = 0")):
        if rr < 2**256 and ss < 2**256:
            g.add(pub, msg, sig_hex(rr, ss), "invalid", why)
    g.add(pub, msg, sig.hex()[:-2], "invalid", "signature truncated to 63 bytes")
    g.add(pub, msg, sig.hex() + "00", "invalid", "signature with a trailing byte")
    g.add(pub, msg, "", "invalid", "empty signature")
    g.add(pub, msg, sig_hex(r, s, 33), "invalid", "r, s zero-padded to 33 bytes")
    g.add(pub, b"", sign_es256(key, b"").hex(), "valid", "empty message")
    big = bytes(rnd.getrandbits(8) for _ in range(1000))
    g.add(pub, big, sign_es256(key, big).hex(), "valid", "1000-byte message")

    # bad public keys with an otherwise well-formed signature
    Q = mul(0xC0FFEE, G)
    for bad, why in ((pub_hex((Q[0], (Q[1] + 1) % P)), "public key off the curve"),
                     ("04" + "00" * 64, "public key (0, 0): infinity encoding"),
                     (pub_hex((Q[0] + P, Q[1])) if Q[0] + P < 2**256 else None, "x + p"),
                     (pub_hex((Q[0], Q[1] + P)) if Q[1] + P < 2**256 else None, "y + p"),
                     ("02" + pub[2:66], "compressed key (not accepted here)"),
                     ("05" + pub[2:], "unknown point prefix")):
        if bad:
            g.add(bad, msg, sig.hex(), "invalid", why)

    # chosen r: signatures forged for crafted keys (valid unless said otherwise)
    msg = b"chosen r"
    e = e_of(msg)
    big_x = None
    for x in range(N, P):  # x(R) >= n: r = x - n, the verifier must reduce x mod n
        R = lift_x(x)
        if R:
            big_x = R
            break
    cases = [(big_x, 7, "x(R) >= n: r = x(R) - n")]
    for rr in (1, 2, 3, N - 1, N - 2, 2**128 + 1, 2**255 + 19):
        R = lift_x(rr)
        if R:
            cases.append((R, rnd.randrange(1, N), "r = %#x" % rr))
    for ss in (1, 2, N - 1, N // 2, N // 2 + 1):
        for rr in range(5, 200):
            R = lift_x(rr)
            if R:
                cases.append((R, ss, "s = %#x" % ss))
                break
    for R, ss, why in cases:
        rr = R[0] % N
        Qf = forge_key(msg, rr, ss, R)
        if Qf is None:
            continue
        g.add(pub_hex(Qf), msg, sig_hex(rr, ss), "valid", "crafted: " + why)
        s2 = ss + 3 if ss + 3 < N else ss - 3  # not n - s: that is the valid high-S twin
        g.add(pub_hex(Qf), msg, sig_hex(rr, s2), "invalid", "crafted, s changed: " + why)
    # Q = G with u1 = u2 (e = r): R = 2 u1 G, mostly invalid, exercising P + P
    rr = e
    for ss in (1, 2, 3, rnd.randrange(1, N)):
        u = rr * pow(ss, -1, N) % N
        R = mul(2 * u % N, G)
        g.add(pub_hex(G), msg, sig_hex(rr, ss),
              "valid" if R and R[0] % N == rr else "invalid", "Q = G, u1 = u2 (P + P)")
    # Q = -G with u1 = u2: R = u1 G - u1 G = infinity -> invalid
    for ss in (1, 5, rnd.randrange(1, N)):
        g.add(pub_hex((G[0], P - G[1])), msg, sig_hex(rr, ss), "invalid",
              "Q = -G, u1 = u2: R is the point at infinity (P + (-P))")

    # random honest signatures and single-bit mutations
    for i in range(n_random):
        key = key_from_int(rnd.randrange(1, N))
        pub = public_bytes(key)
        msg = bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(0, 200)))
        sig = sign_es256(key, msg)
        g.add(pub.hex(), msg, sig.hex(), "valid", "random key %d" % i)
        bit = rnd.randrange(512)
        bad = bytearray(sig)
        bad[bit // 8] ^= 1 << (bit % 8)
        g.add(pub.hex(), msg, bad.hex(), "invalid", "random key %d, signature bit %d" % (i, bit))
        if msg:
            bit = rnd.randrange(len(msg) * 8)
            bm = bytearray(msg)
            bm[bit // 8] ^= 1 << (bit % 8)
            g.add(pub.hex(), bytes(bm), sig.hex(), "invalid", "random key %d, message bit %d" % (i, bit))
        bit = rnd.randrange(8, 520)
        bp = bytearray(pub)
        bp[bit // 8] ^= 1 << (bit % 8)
        g.add(bytes(bp).hex(), msg, sig.hex(), "invalid", "random key %d, key bit %d" % (i, bit))
    return g


def main():
    hdr = {"algorithm": "ECDSA", "generatorVersion": "brt-1",
           "header": ["ES256 vectors for the firmware verifier; see tests/vectors/make_vectors.py"],
           "notes": {}, "schema": "ecdsa_p1363_verify_schema.json"}
    full = build(150)
    (HERE / "ecdsa_p256_sha256_p1363.json").write_text(json.dumps(full.doc(hdr), indent=1) + "\n")
    small = build(10)
    (HERE / "ecdsa_p256_sha256_p1363_small.json").write_text(
        json.dumps(small.doc(hdr), indent=1) + "\n")
    print("wrote %d and %d tests" % (full.n, small.n))


if __name__ == "__main__":
    ec  # noqa: B018 - cryptography must be importable (keys come from it)
    main()
