"""Build, sign and check operator-signed downlink bundles (format: docs/bundles.md).

Used by provisioning (trust list and fare table at configure time), by the back office
(deny-list deltas and full bundles) and by the depot (merging deltas into a full deny
list). The firmware side is firmware/bundles.py; both follow the same byte layout:

    "BRTB" | fmt 1 | kind | version u32 | issued_at u32 | body length u32 | body
    | ES256 signature (r||s, 64 bytes) over SHA-256 of everything before it

Library: `sign_bundle`, `parse_bundle`, the body builders (`trust_body`, `deny_body`,
`fares_body`, `config_body`, `delta_body`), `merge_delta`. CLI: `python -m host.bundles
build fares --version 3 --key operator.pem --fare 0=3500 --fare 1=1000 -o fares.cose`,
`python -m host.bundles show FILE --pub HEX`.
"""

import hashlib
import struct
import time
from dataclasses import dataclass

import cbor2
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature, encode_dss_signature)

from host import ranges

MAGIC = b"BRTB"
FORMAT = 1
HEADER = 18
SIG = 64
TRUST, DENY, FARES, CONFIG, DENY_DELTA = 1, 2, 3, 4, 5
KINDS = {"trust": TRUST, "deny": DENY, "fares": FARES, "config": CONFIG, "deny-delta": DENY_DELTA}
KIND_NAMES = {v: k for k, v in KINDS.items()}
FILES = {TRUST: "trust.cose", DENY: "deny.bin", FARES: "fares.cose", CONFIG: "config.bun"}
MAX_BODY = {TRUST: 16384, DENY: 1048576, FARES: 4096, CONFIG: 4096, DENY_DELTA: 1048576}
DENY_ENTRY = 8
CATEGORIES = range(0, 6)  # docs/ARCHITECTURE.md 'Shared vocabulary'
CONFIG_KEYS = {"qr_window_s": int, "passback_s": int, "wifi": dict, "depot_url": str}
CONFIG_RANGES = {"qr_window_s": (5, 300), "passback_s": (0, 3600)}  # = app/config.py
USAGE_PASS = 1  # trust list usage bit: may sign wallet passes


class BundleError(Exception):
    """A bundle (or the input to build one) is not acceptable; `.reason` says why.

    Reasons are the firmware's (firmware/bundles.py): truncated, bad_magic, bad_format,
    bad_kind, wrong_kind, too_large, bad_body, bad_signature, stale, trailing; plus
    bad_input for builder arguments.
    """

    def __init__(self, reason, detail=""):
        super().__init__("%s%s" % (reason, ": " + detail if detail else ""))
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Bundle:
    kind: int
    version: int
    issued_at: int
    body: bytes
    raw: bytes

    @property
    def digest(self):
        return hashlib.sha256(self.raw[:HEADER + len(self.body)]).digest()


# --- keys -------------------------------------------------------------------------------

def generate_key():
    return ec.generate_private_key(ec.SECP256R1())


def public_bytes(key):
    """65-byte uncompressed point of a private or public P-256 key."""
    pub = key.public_key() if hasattr(key, "public_key") else key
    return pub.public_bytes(serialization.Encoding.X962,
                            serialization.PublicFormat.UncompressedPoint)


def load_public(point):
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), bytes(point))
    except (ValueError, TypeError) as e:
        raise BundleError("bad_input", "operator public key: %s" % e) from None


def kid(point):
    return hashlib.sha256(bytes(point)).digest()[:8]


def load_private_key(path):
    """Operator private key from a PEM file (PKCS#8 or SEC1, unencrypted)."""
    try:
        data = open(path, "rb").read()
        key = serialization.load_pem_private_key(data, password=None)
    except (OSError, ValueError, TypeError) as e:
        raise BundleError("bad_input", "operator key %s: %s" % (path, e)) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise BundleError("bad_input", "operator key %s is not a P-256 key" % path)
    return key


def save_private_key(key, path):
    with open(path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))


# --- envelope ----------------------------------------------------------------------------

def sign_bundle(kind, version, body, key, issued_at=None):
    """The signed bundle bytes for `body` of `kind` at `version`."""
    if kind not in MAX_BODY:
        raise BundleError("bad_kind", str(kind))
    if not 0 < version < 2 ** 32:
        raise BundleError("bad_input", "version must be 1..2**32-1")
    body = bytes(body)
    if len(body) > MAX_BODY[kind]:
        raise BundleError("too_large", "%d > %d" % (len(body), MAX_BODY[kind]))
    issued_at = int(time.time()) if issued_at is None else int(issued_at)
    head = MAGIC + struct.pack(">BBIII", FORMAT, kind, version, issued_at, len(body))
    der = key.sign(head + body, ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    return head + body + r.to_bytes(32, "big") + s.to_bytes(32, "big")


def parse_bundle(data, public_key=None, expect_kind=None):
    """Parse (and, given the operator's 65-byte public key, verify) a bundle; BundleError."""
    data = bytes(data)
    if len(data) < HEADER:
        raise BundleError("truncated", "header")
    if data[:4] != MAGIC:
        raise BundleError("bad_magic")
    if data[4] != FORMAT:
        raise BundleError("bad_format", str(data[4]))
    kind = data[5]
    if kind not in MAX_BODY:
        raise BundleError("bad_kind", str(kind))
    if expect_kind is not None and kind != expect_kind:
        raise BundleError("wrong_kind", "%d, expected %d" % (kind, expect_kind))
    version, issued, length = struct.unpack_from(">III", data, 6)
    if length > MAX_BODY[kind]:
        raise BundleError("too_large", "%d > %d" % (length, MAX_BODY[kind]))
    end = HEADER + length
    if len(data) < end + SIG:
        raise BundleError("truncated", "%d of %d bytes" % (len(data), end + SIG))
    if len(data) > end + SIG:
        raise BundleError("trailing")
    if public_key is not None:
        sig = data[end:]
        der = encode_dss_signature(int.from_bytes(sig[:32], "big"),
                                   int.from_bytes(sig[32:], "big"))
        try:
            load_public(public_key).verify(der, data[:end], ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise BundleError("bad_signature") from None
    b = Bundle(kind, version, issued, data[HEADER:end], data)
    if kind == DENY:
        parse_deny(b.body)
    return b


# --- bodies ------------------------------------------------------------------------------

def trust_body(issuers):
    """Trust list: issuers as (pubkey65, not_before, not_after, usage) tuples."""
    rows = []
    for pub, nb, na, usage in issuers:
        pub = bytes(pub)
        load_public(pub)  # a point on the curve, or bad_input
        if not (0 <= nb < na < 2 ** 32) or not 0 <= usage < 256:
            raise BundleError("bad_input", "issuer validity/usage")
        rows.append([kid(pub), pub, int(nb), int(na), int(usage)])
    return cbor2.dumps(rows)


def deny_entry(tag, ident):
    """b"W" + wallet id or b"P" + pass id -> the 8-byte deny-list entry."""
    if tag not in (b"W", b"P"):
        raise BundleError("bad_input", "deny tag must be W or P")
    return hashlib.sha256(tag + bytes(ident)).digest()[:DENY_ENTRY]


def deny_body(entries):
    """Full deny list: the entries (8 bytes each) sorted, without duplicates."""
    out = sorted(set(bytes(e) for e in entries))
    if any(len(e) != DENY_ENTRY for e in out):
        raise BundleError("bad_input", "deny entries are 8 bytes")
    return b"".join(out)


def parse_deny(body):
    if len(body) % DENY_ENTRY:
        raise BundleError("bad_body", "deny list length")
    entries = [body[i:i + DENY_ENTRY] for i in range(0, len(body), DENY_ENTRY)]
    if any(a >= b for a, b in zip(entries, entries[1:])):
        raise BundleError("bad_body", "deny list not strictly ascending")
    return entries


def fares_body(fares, cur="IDR"):
    """Fare table: {category: rupiah} -> CBOR {"cur": cur, "fares": {...}}."""
    clean = {}
    for cat, amount in fares.items():
        # docs/ranges.md: the firmware refuses a table with an amount above MAX_FARE
        if int(cat) not in CATEGORIES or not ranges.is_uint(amount, 0, ranges.MAX_FARE):
            raise BundleError("bad_input", "fare %r: %r" % (cat, amount))
        clean[int(cat)] = amount
    if not clean:
        raise BundleError("bad_input", "empty fare table")
    return cbor2.dumps({"cur": cur, "fares": clean}, canonical=True)


def check_config(changes):
    """BundleError('bad_config') unless `changes` is what a validator installs: only
    qr_window_s, passback_s, wifi, depot_url, each within its documented range
    (docs/bundles.md 'Config ranges'; the firmware checks the same, app/config.py)."""
    def bad(why):
        return BundleError("bad_config", why)
    if not isinstance(changes, dict) or not changes:
        raise bad("a config bundle is a non-empty map of changes")
    for k, v in changes.items():
        if k not in CONFIG_KEYS:
            raise bad("%r may not be changed by a bundle" % (k,))
        if not isinstance(v, CONFIG_KEYS[k]) or isinstance(v, bool):
            raise bad("%s must be %s" % (k, CONFIG_KEYS[k].__name__))
        if k in CONFIG_RANGES:
            lo, hi = CONFIG_RANGES[k]
            if not lo <= v <= hi:
                raise bad("%s must be %d..%d (got %d)" % (k, lo, hi, v))
    w = changes.get("wifi")
    if w is not None:
        if set(w) != {"ssid", "psk"}:
            raise bad("wifi needs exactly ssid and psk")
        ok = all(isinstance(w[x], str) and w[x].isascii() and w[x].isprintable() for x in w)
        if not ok or not 1 <= len(w["ssid"]) <= 32 or len(w["psk"]) > 63 or \
                0 < len(w["psk"]) < 8:
            raise bad("wifi: ssid 1..32 printable ASCII, psk empty or 8..63")
    u = changes.get("depot_url")
    if u is not None and (not u.startswith("http://") or not 8 <= len(u) <= 128 or
                          not u.isascii() or not u.isprintable()):
        raise bad("depot_url: http://..., 8..128 printable ASCII")


def config_body(changes):
    """Config bundle body; refuses keys and values a validator would refuse (check_config)."""
    check_config(changes)
    return cbor2.dumps(dict(changes), canonical=True)


def delta_body(from_version, add=(), remove=()):
    """Deny-list delta (back office -> depot): CBOR {"from": v, "add": [..], "del": [..]}."""
    add = sorted(set(bytes(e) for e in add))
    rem = sorted(set(bytes(e) for e in remove))
    if any(len(e) != DENY_ENTRY for e in add + rem) or set(add) & set(rem):
        raise BundleError("bad_input", "delta entries")
    return cbor2.dumps({"from": int(from_version), "add": add, "del": rem})


def parse_delta(body):
    try:
        d = cbor2.loads(body)
        frm, add, rem = d["from"], d["add"], d["del"]
        if not (isinstance(frm, int) and isinstance(add, list) and isinstance(rem, list)):
            raise TypeError
        if any(not isinstance(e, bytes) or len(e) != DENY_ENTRY for e in add + rem):
            raise TypeError
    except (ValueError, TypeError, KeyError, cbor2.CBORDecodeError):
        raise BundleError("bad_body", "deny delta") from None
    return frm, add, rem


def merge_delta(entries, have_version, delta):
    """Apply a parsed, verified delta Bundle to the full entry set at `have_version`.

    Returns the new set; a delta that does not start at `have_version` is `stale`
    (already applied) or `bad_input` (a gap: fetch the missing deltas first).
    """
    frm, add, rem = parse_delta(delta.body)
    if delta.version <= have_version:
        raise BundleError("stale", "delta to %d, have %d" % (delta.version, have_version))
    if frm != have_version:
        raise BundleError("bad_input", "delta from %d, have %d" % (frm, have_version))
    return (set(entries) - set(rem)) | set(add)


# --- command line ------------------------------------------------------------------------

def main(argv=None):
    """`python -m host.bundles`: build a signed bundle, or show/verify one. Exit 0/1."""
    import argparse
    import json
    import sys

    p = argparse.ArgumentParser(prog="python -m host.bundles")
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build and sign a bundle")
    b.add_argument("kind", choices=["trust", "deny", "fares", "config"])
    b.add_argument("--version", type=int, required=True)
    b.add_argument("--key", required=True, help="operator private key (PEM)")
    b.add_argument("--out", "-o", required=True)
    b.add_argument("--fare", action="append", default=[], help="CATEGORY=RUPIAH (fares)")
    b.add_argument("--issuer", action="append", default=[],
                   help="PUBHEX:NOT_BEFORE:NOT_AFTER[:USAGE] (trust)")
    b.add_argument("--deny-wallet", action="append", default=[], help="wallet id hex (deny)")
    b.add_argument("--deny-pass", action="append", default=[], help="pass id hex (deny)")
    b.add_argument("--set", action="append", default=[], help="KEY=JSON (config)")
    s = sub.add_parser("show", help="print a bundle's header (and verify it)")
    s.add_argument("file")
    s.add_argument("--pub", help="operator public key hex: verify the signature")
    a = p.parse_args(argv)
    try:
        if a.cmd == "show":
            try:
                raw = open(a.file, "rb").read()
            except OSError as e:
                raise BundleError("bad_input",
                                  "cannot read %s: %s" % (a.file, e.strerror)) from None
            pub = bytes.fromhex(a.pub) if a.pub else None
            bd = parse_bundle(raw, pub)
            print(json.dumps({"kind": KIND_NAMES[bd.kind], "version": bd.version,
                              "issued_at": bd.issued_at, "body_bytes": len(bd.body),
                              "verified": pub is not None}))
            return 0
        key = load_private_key(a.key)
        if a.kind == "fares":
            fares = {}
            for f in a.fare:
                cat, _, amount = f.partition("=")
                fares[int(cat)] = int(amount)
            kind, body = FARES, fares_body(fares)
        elif a.kind == "trust":
            rows = []
            for spec in a.issuer:
                parts = spec.split(":")
                rows.append((bytes.fromhex(parts[0]), int(parts[1]), int(parts[2]),
                             int(parts[3]) if len(parts) > 3 else USAGE_PASS))
            kind, body = TRUST, trust_body(rows)
        elif a.kind == "deny":
            entries = [deny_entry(b"W", bytes.fromhex(w)) for w in a.deny_wallet]
            entries += [deny_entry(b"P", bytes.fromhex(x)) for x in a.deny_pass]
            kind, body = DENY, deny_body(entries)
        else:
            changes = {}
            for kv in a.set:
                k, _, v = kv.partition("=")
                changes[k] = json.loads(v)
            kind, body = CONFIG, config_body(changes)
        raw = sign_bundle(kind, a.version, body, key)
        with open(a.out, "wb") as f:
            f.write(raw)
        print("wrote %s: %s version %d, %d bytes" % (a.out, a.kind, a.version, len(raw)))
        return 0
    except (BundleError, ValueError, IndexError, OSError) as e:
        print("bundles: %s" % e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
