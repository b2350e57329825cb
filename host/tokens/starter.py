"""The conformance kit's starter pack (docs/conformance.md): issuer keys and cases a wallet
partner copies, runs with `python -m sim conformance`, then replaces with their own.

    python -m host.tokens starter DIR [--force]
    make_starter(dir, now=None) -> {"keys": n, "cases": n, ...}

Layout written:
    DIR/keys/       the issuer PUBLIC keys the validator will trust: issuer.pem (PEM),
                    issuer-cose.cose (COSE_Key with kid), and three keys that exist to be
                    refused (future.pem, retired.pem, no-usage.pem); keys.json gives each
                    one's validity and usage
    DIR/cases/      cases.json and its files: passes/*.pass (COSE_Sign1 bytes), phones/*.pem
                    (test phones' private keys: run-time proofs), qr/*.txt, nfc/*.nfc
    DIR/private/    the issuer private keys, to mint more passes (`python -m host.tokens
                    mint`); the kit never reads them. unknown.pem is deliberately not trusted.
One valid case per channel and fare category, and one case per reason code a wallet can
cause (host/tokens/starter_bad.py). Passes are dated: the pack holds for ~300 days.
"""

import json
import pathlib
import secrets
import time

import cbor2
from cryptography.hazmat.primitives import serialization

from . import keys, token
from .errors import TokenToolError

DAY = 86400
HORIZON = 300 * DAY        # the pack's time-dependent cases hold this long
CATEGORY_NAMES = ("regular", "student", "veteran", "disability", "elderly", "child")


class Pack:
    """A pack being written: keys, files and cases, with helpers for the case builders."""

    def __init__(self, root, now):
        self.root = pathlib.Path(root)
        self.now = now
        self.cases = []
        self.key_entries = []
        self.issuers = {}                   # name -> private key (trusted or not)
        for d in ("keys", "private", "cases/passes", "cases/phones", "cases/qr", "cases/nfc"):
            (self.root / d).mkdir(parents=True, exist_ok=True)

    # --- keys ---------------------------------------------------------------------------
    def issuer(self, name, nb=None, na=None, usage="pass", fmt="pem", trusted=True):
        k = keys.generate_key()
        keys.save_key(k, self.root / "private" / (name + ".pem"))
        self.issuers[name] = k
        if not trusted:
            return k
        pub = keys.public_bytes(k)
        if fmt == "pem":
            fname = name + ".pem"
            data = k.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
        else:                   # COSE_Key (RFC 9052 EC2), kid as label 2
            fname = name + ".cose"
            data = cbor2.dumps({1: 2, 2: keys.kid(pub), -1: 1, -2: pub[1:33], -3: pub[33:]},
                               canonical=True)
        (self.root / "keys" / fname).write_bytes(data)
        self.key_entries.append({
            "file": fname, "kid": keys.kid(pub).hex(), "usage": usage,
            "not_before": _iso(self.now - DAY if nb is None else nb),
            "not_after": _iso(self.now + 2 * 365 * DAY if na is None else na)})
        return k

    def phone(self, name):
        k = keys.generate_key()
        keys.save_key(k, self.root / "cases/phones" / (name + ".pem"))
        return k, "phones/%s.pem" % name

    # --- passes and files -----------------------------------------------------------------
    def mint(self, issuer="issuer", phone=None, category=0, allowance=200000, iat=None,
             exp=None, operator="TSM"):
        """A pass for `phone` (a new phone key if None): (pass bytes, phone key)."""
        pk = phone or keys.generate_key()
        iat = self.now - DAY if iat is None else iat
        exp = self.now + 365 * DAY if exp is None else exp
        p = token.mint_pass(self.issuers[issuer], keys.public_bytes(pk), secrets.token_bytes(8),
                            secrets.token_bytes(8), category, allowance, iat, exp,
                            operator=operator)
        return p, pk

    def write(self, sub, name, data):
        rel = "%s/%s" % (sub, name)
        path = self.root / "cases" / rel
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return rel

    def runtime_case(self, name, channel, expect, about, **opt):
        """A case whose proof the kit mints at run time: pass + the phone's key."""
        pk, key_rel = self.phone(name)
        p, _ = self.mint(phone=pk, **opt.pop("mint", {}))
        spec = {"name": name, "channel": channel, "expect": expect, "about": about,
                "pass": self.write("passes", name + ".pass", p), "phone_key": key_rel}
        spec.update(opt)
        self.cases.append(spec)

    def qr_case(self, name, text, expect, about):
        self.cases.append({"name": name, "channel": "qr", "expect": expect, "about": about,
                           "qr": self.write("qr", name + ".txt", text + "\n")})

    def nfc_case(self, name, tok, expect, about):
        self.cases.append({"name": name, "channel": "nfc", "expect": expect, "about": about,
                           "token": self.write("nfc", name + ".nfc", tok)})

    def save(self):
        (self.root / "keys/keys.json").write_text(json.dumps(
            {"format": "brt-conformance-keys/1", "keys": self.key_entries}, indent=1) + "\n")
        (self.root / "cases/cases.json").write_text(json.dumps(
            {"format": "brt-conformance-cases/1", "generated": _iso(self.now),
             "valid_until": self.now + HORIZON, "cases": self.cases}, indent=1) + "\n")


def _iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def make_starter(root, now=None, force=False):
    """Write the starter pack into `root`; TokenToolError if it exists (unless force)."""
    root = pathlib.Path(root)
    if root.exists() and any(root.iterdir()) and not force:
        raise TokenToolError("%s is not empty (use --force to write over it)" % root)
    from .starter_bad import add_rejections
    pack = Pack(root, int(time.time()) if now is None else now)
    pack.issuer("issuer")                                   # PEM, valid, signs QR passes
    pack.issuer("issuer-cose", fmt="cose")                  # COSE_Key, signs NFC passes
    n = pack.now
    pack.issuer("future", nb=n + 400 * DAY, na=n + 800 * DAY)
    pack.issuer("retired", nb=n - 400 * DAY, na=n - DAY)
    pack.issuer("no-usage", usage="none")
    pack.issuer("unknown", trusted=False)
    for cat, cname in enumerate(CATEGORY_NAMES):
        pack.runtime_case("qr-" + cname, "qr", "accepted",
                          "valid %s pass (category %d), proof minted at the tap" % (cname, cat),
                          mint={"category": cat})
        pack.runtime_case("nfc-" + cname, "nfc", "accepted",
                          "valid %s pass (category %d) from the COSE_Key issuer, proof "
                          "signs the validator's live challenge" % (cname, cat),
                          mint={"category": cat, "issuer": "issuer-cose"})
    add_rejections(pack)
    pack.save()
    return {"root": str(root), "keys": len(pack.key_entries), "cases": len(pack.cases),
            "valid_until": _iso(pack.now + HORIZON)}
