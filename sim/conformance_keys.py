"""A wallet partner's issuer public keys for the conformance kit (docs/conformance.md).

A keys folder holds public keys as PEM (SubjectPublicKeyInfo, `-----BEGIN PUBLIC KEY-----`)
or COSE_Key (RFC 9052 EC2 P-256, CBOR binary or hex, optional kid label 2), and optionally
`keys.json` giving each file's validity and usage; without it every key file in the folder
is trusted from a day ago for a year, for signing passes. The kit turns them into the
rows of a trust-list bundle (docs/bundles.md) exactly as an operator would.

    keys = load_keys(dir, now)      # [PartnerKey]; ConformanceError with the file named
    trust_body(keys)                # the trust-list bundle's body (host.bundles)
"""

import datetime
import json
import pathlib

import cbor2
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from host import tokens as ht
from host.tokens.token import cnf_public_bytes

KEYS_MANIFEST = "keys.json"
KEY_SUFFIXES = (".pem", ".cose", ".cbor")
USAGE_PASS = 1          # trust-list usage bit: may sign wallet passes
DAY = 86400


class ConformanceError(Exception):
    """The kit cannot run as asked: a bad key, case or manifest (one-line message)."""

    def __init__(self, message):
        # one line whatever a library's message held (a partner reads it in a CI log)
        super().__init__(" ".join(str(message).split()))


class PartnerKey:
    def __init__(self, source, pub, not_before, not_after, usage):
        self.source = source          # file name, for messages
        self.pub = pub                # 65-byte point 04||x||y
        self.kid = ht.kid(pub)
        self.not_before, self.not_after, self.usage = not_before, not_after, usage

    def describe(self):
        return "%s kid %s usage %d valid %s .. %s" % (
            self.source, self.kid.hex(), self.usage, _iso(self.not_before),
            _iso(self.not_after))


def _iso(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def _time(v, what):
    """Unix seconds from an int or an ISO 8601 text (2026-01-01T00:00:00Z)."""
    if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2 ** 32:
        return v
    if isinstance(v, str):
        try:
            d = datetime.datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            pass
        else:
            if d.tzinfo is None:
                d = d.replace(tzinfo=datetime.timezone.utc)
            t = int(d.timestamp())
            if 0 <= t < 2 ** 32:
                return t
    raise ConformanceError("%s: not a time (Unix seconds or 2026-01-01T00:00:00Z): %r"
                           % (what, v))


def _usage(v, what):
    if v in ("pass", "passes"):
        return USAGE_PASS
    if v in ("none", ""):
        return 0
    if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 256:
        return v
    raise ConformanceError("%s: usage must be \"pass\", \"none\" or a bit mask 0..255" % what)


def label(name):
    """A file name as messages show it: as is, or quoted if it has unprintable characters
    (every kit error is one line)."""
    name = str(name)
    return name if name.isprintable() else repr(name)


def read_public_key(path):
    """(pub65, kid given in the file or None) of a PEM or COSE_Key public key file."""
    name = label(path.name)
    try:
        raw = path.read_bytes()
    except (OSError, ValueError) as e:
        raise ConformanceError("cannot read %s: %s" % (label(path), getattr(e, "strerror", None)
                                                        or e)) from None
    if b"-----BEGIN" in raw:
        if b"PRIVATE KEY" in raw:
            raise ConformanceError("%s is a private key: give the issuer's public key "
                                   "(openssl ec -in KEY -pubout)" % name)
        try:
            key = serialization.load_pem_public_key(raw)
        except ValueError as e:
            raise ConformanceError("%s is not a PEM public key (%s)" % (name, e)) from None
        if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
            raise ConformanceError("%s is not a P-256 (secp256r1) key" % name)
        return ht.public_bytes(key), None
    return _cose_key(raw, name)


def hex_or_binary(raw, what="file"):
    """A binary file's bytes, or the same bytes written as hex text (whitespace allowed)."""
    text = raw.strip()
    if text and all(c in b"0123456789abcdefABCDEF \n\r\t" for c in text):
        try:
            return bytes.fromhex(text.decode())
        except ValueError:
            raise ConformanceError("%s: hex text with an odd number of digits" % what) from None
    return raw


def _cose_key(raw, name):
    try:
        m = cbor2.loads(hex_or_binary(raw, name))
    except Exception as e:  # cbor2 raises several types
        raise ConformanceError("%s is neither PEM nor a CBOR COSE_Key (%s)" % (name, e)) from None
    if not isinstance(m, dict) or m.get(1) != 2 or m.get(-1) != 1:
        raise ConformanceError("%s: a COSE_Key must be EC2 (1: 2) on P-256 (-1: 1)" % name)
    x, y = m.get(-2), m.get(-3)
    if isinstance(y, bytes) and isinstance(x, bytes) and len(x) == len(y) == 32:
        pub = b"\x04" + x + y
        try:
            ht.public_key_from_bytes(pub)
        except ht.TokenToolError:
            pub = None
    else:
        pub = cnf_public_bytes({-2: x, -3: y})     # compressed: x and the y-sign bool
    if pub is None:
        raise ConformanceError("%s: COSE_Key x/y is not a point on P-256" % name)
    kid = m.get(2)
    if kid is not None and not isinstance(kid, bytes):
        raise ConformanceError("%s: COSE_Key kid (label 2) must be a byte string" % name)
    return pub, kid


def _check_kid(pub, given, what):
    if given is not None and bytes(given) != ht.kid(pub):
        raise ConformanceError(
            "%s: kid %s is not the key's SHA-256(public point)[:8] = %s; the validator "
            "finds issuer keys by that kid (docs/tokens.md 'Keys')"
            % (what, bytes(given).hex(), ht.kid(pub).hex()))


def load_keys(folder, now):
    """The partner's keys from `folder` (see the module doc); ConformanceError if unusable."""
    folder = pathlib.Path(folder)
    if not folder.is_dir():
        raise ConformanceError("keys folder %s does not exist" % folder)
    manifest = folder / KEYS_MANIFEST
    if manifest.exists():
        try:
            m = json.loads(manifest.read_text(encoding="utf-8"))
            entries = m["keys"]
            assert isinstance(entries, list)
        except (ValueError, KeyError, TypeError, AssertionError):
            raise ConformanceError("%s: expected {\"keys\": [{\"file\": ...}, ...]} "
                                   "(docs/conformance.md)" % manifest) from None
    else:
        entries = [{"file": p.name} for p in sorted(folder.iterdir())
                   if p.suffix.lower() in KEY_SUFFIXES]
    keys, seen = [], set()
    for i, e in enumerate(entries):
        what = "%s key %d" % (KEYS_MANIFEST, i + 1)
        if not isinstance(e, dict) or not isinstance(e.get("file"), str):
            raise ConformanceError("%s: needs \"file\"" % what)
        what = label(e["file"])
        pub, kid = read_public_key(folder / e["file"])
        _check_kid(pub, kid, what)
        if "kid" in e:
            try:
                _check_kid(pub, bytes.fromhex(e["kid"]), what)
            except (TypeError, ValueError):
                raise ConformanceError("%s: kid must be 16 hex digits" % what) from None
        nb = _time(e.get("not_before", now - DAY), what + " not_before")
        na = _time(e.get("not_after", now + 365 * DAY), what + " not_after")
        if na <= nb:
            raise ConformanceError("%s: not_after must be after not_before" % what)
        k = PartnerKey(e["file"], pub, nb, na, _usage(e.get("usage", "pass"), what))
        if k.kid in seen:
            raise ConformanceError("%s: the same key is listed twice" % what)
        seen.add(k.kid)
        keys.append(k)
    if not keys:
        raise ConformanceError("no issuer keys in %s (*.pem, *.cose, *.cbor or keys.json)"
                               % folder)
    return keys


def trust_body(keys):
    """The trust-list bundle's body for these keys (docs/bundles.md); ConformanceError if
    the validator would refuse it for its size."""
    from host import bundles as hb
    body = hb.trust_body([(k.pub, k.not_before, k.not_after, k.usage) for k in keys])
    if len(body) > hb.MAX_BODY[hb.TRUST]:
        raise ConformanceError("%d keys make a trust list of %d bytes: a validator takes at "
                               "most %d (docs/bundles.md)"
                               % (len(keys), len(body), hb.MAX_BODY[hb.TRUST]))
    return body
