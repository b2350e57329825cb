"""`python -m host.tokens COMMAND ...` — the token tools for wallet partners and developers.

Commands (each a function taking parsed args; main() returns the exit code):
    keygen   KEYFILE [--kind issuer|operator|phone]  new P-256 key (PEM), prints kid + pubkey
    pubkey   KEYFILE                                 prints kid and the 65-byte public key (hex)
    mint     --issuer-key K --phone-key P --wallet-id HEX --pass-id HEX --category N
             --allowance RP [--iat T] [--days D] [--operator TSM] --out PASSFILE
    proof    --pass PASSFILE --phone-key P [--time T] [--counter N] [--challenge HEX] --out F
    qr       --pass F --proof F [--png OUT.png]      prints the QR text and its QR version
    nfc      --pass F --phone-key P --challenge HEX [--time T] [--counter N]
             prints the response APDUs (hex) the phone sends for that challenge
    inspect  TOKEN [--trust KID=PUBHEX ...]           QR text, hex, or a file; JSON out
                                                      (exit 3: a signature did not check)
    starter  DIR [--force]      the conformance kit's starter pack (docs/conformance.md)
Exit codes: 0 ok, 1 bad input (one-line message on stderr), 2 usage.
"""

import argparse
import json
import pathlib
import sys
import time as _time

from . import apdu, fmt, keys, qr, token
from .errors import TokenToolError


def _hex(s, name):
    try:
        return bytes.fromhex(s)
    except ValueError:
        raise TokenToolError("%s is not hex: %r" % (name, s)) from None


def _read(path):
    try:
        return pathlib.Path(path).read_bytes()
    except OSError as e:
        raise TokenToolError("cannot read %s: %s" % (path, e.strerror)) from None


def _write(path, data):
    try:
        pathlib.Path(path).write_bytes(data)
    except OSError as e:
        raise TokenToolError("cannot write %s: %s" % (path, e.strerror)) from None


def cmd_keygen(a):
    if pathlib.Path(a.keyfile).exists() and not a.force:
        raise TokenToolError("%s exists (use --force to replace it)" % a.keyfile)
    k = keys.generate_key()
    keys.save_key(k, a.keyfile)
    print("%s key %s kid %s pub %s" % (a.kind, a.keyfile, keys.kid(k).hex(),
                                       keys.public_bytes(k).hex()))


def cmd_pubkey(a):
    k = keys.load_key(a.keyfile)
    print("kid %s pub %s" % (keys.kid(k).hex(), keys.public_bytes(k).hex()))


def cmd_mint(a):
    ik, pk = keys.load_key(a.issuer_key), keys.load_key(a.phone_key)
    iat = int(_time.time()) if a.iat is None else a.iat
    p = token.mint_pass(ik, keys.public_bytes(pk), _hex(a.wallet_id, "wallet id"),
                        _hex(a.pass_id, "pass id"), a.category, a.allowance, iat,
                        iat + int(a.days * 86400), operator=a.operator, issuer=a.issuer)
    _write(a.out, p)
    print("pass %s: %d bytes, kid %s" % (a.out, len(p), keys.kid(ik).hex()))


def cmd_proof(a):
    p = _read(a.pass_file)
    pk = keys.load_key(a.phone_key)
    t = int(_time.time()) if a.time is None else a.time
    ch = _hex(a.challenge, "challenge") if a.challenge else None
    pr = token.make_proof(p, pk, t, a.counter, ch)
    _write(a.out, pr)
    print("proof %s: %d bytes, time %d" % (a.out, len(pr), t))


def cmd_qr(a):
    text = token.qr_text(_read(a.pass_file), _read(a.proof_file))
    print(text)
    print("QR version %d (error correction M), %d characters" % (qr.qr_version(text), len(text)),
          file=sys.stderr)
    if a.png:
        qr.save_png(text, a.png)


def cmd_nfc(a):
    p = _read(a.pass_file)
    pk = keys.load_key(a.phone_key)
    ch = _hex(a.challenge, "challenge")
    t = int(_time.time()) if a.time is None else a.time
    payload = token.nfc_payload(p, token.make_proof(p, pk, t, a.counter, ch))
    for r in apdu.split_response(payload):
        print(r.hex())


def _is_file(src):
    """True if src names a file. A QR text is not a path: with a '/' in it, a part can be
    longer than a file name may be, and stat() then raises (ENAMETOOLONG) instead of
    answering no."""
    try:
        return pathlib.Path(src).is_file()
    except (OSError, ValueError):
        return False


def cmd_inspect(a):
    src = a.token
    if _is_file(src):
        raw = _read(src)
        src = raw.decode("ascii").strip() if raw.startswith(fmt.PREFIX.encode()) else raw
    elif not src.startswith(fmt.PREFIX):
        src = _hex(src, "token")
    trust = None
    if a.trust:
        trust = {}
        for item in a.trust:
            k, _, v = item.partition("=")
            trust[_hex(k, "kid")] = _hex(v, "public key")
    out = token.inspect_token(src, trust)
    print(json.dumps(out, indent=1))
    if trust is not None and not (out.get("pass_sig_ok") and out.get("proof_sig_ok")):
        # the JSON says which signature failed; the exit code must not say "checked, fine"
        print("error: signature check failed (pass_sig_ok %s, proof_sig_ok %s): not signed "
              "by the --trust key(s) given" % (out.get("pass_sig_ok"), out.get("proof_sig_ok")),
              file=sys.stderr)
        return 3
    return 0


def cmd_starter(a):
    from .starter import make_starter
    r = make_starter(a.dir, force=a.force)
    print("starter pack in %s: %d issuer keys, %d cases (time-dependent cases hold until %s)"
          % (r["root"], r["keys"], r["cases"], r["valid_until"]))
    print("run it: python -m sim conformance --keys %s/keys --cases %s/cases"
          % (r["root"], r["root"]))


def build_parser():
    ap = argparse.ArgumentParser(prog="python -m host.tokens",
                                 description="BRT wallet token tools (docs/tokens.md)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("keygen", help="new P-256 key")
    s.add_argument("keyfile")
    s.add_argument("--kind", choices=keys.KINDS, default="issuer")
    s.add_argument("--force", action="store_true")
    s.set_defaults(fn=cmd_keygen)
    s = sub.add_parser("pubkey", help="kid and public key of a key file")
    s.add_argument("keyfile")
    s.set_defaults(fn=cmd_pubkey)
    s = sub.add_parser("mint", help="mint a wallet pass")
    s.add_argument("--issuer-key", required=True)
    s.add_argument("--phone-key", required=True)
    s.add_argument("--wallet-id", required=True)
    s.add_argument("--pass-id", required=True)
    s.add_argument("--category", type=int, default=0)
    s.add_argument("--allowance", type=int, default=50000)
    s.add_argument("--iat", type=int)
    s.add_argument("--days", type=float, default=7)
    s.add_argument("--operator", default="TSM")
    s.add_argument("--issuer", default="BRTW")
    s.add_argument("--out", required=True)
    s.set_defaults(fn=cmd_mint)
    s = sub.add_parser("proof", help="make a tap proof")
    s.add_argument("--pass", dest="pass_file", required=True)
    s.add_argument("--phone-key", required=True)
    s.add_argument("--time", type=int)
    s.add_argument("--counter", type=int, default=0)
    s.add_argument("--challenge")
    s.add_argument("--out", required=True)
    s.set_defaults(fn=cmd_proof)
    s = sub.add_parser("qr", help="QR text (and PNG) of pass + proof")
    s.add_argument("--pass", dest="pass_file", required=True)
    s.add_argument("--proof", dest="proof_file", required=True)
    s.add_argument("--png")
    s.set_defaults(fn=cmd_qr)
    s = sub.add_parser("nfc", help="the phone's response APDUs for a challenge")
    s.add_argument("--pass", dest="pass_file", required=True)
    s.add_argument("--phone-key", required=True)
    s.add_argument("--challenge", required=True)
    s.add_argument("--time", type=int)
    s.add_argument("--counter", type=int, default=0)
    s.set_defaults(fn=cmd_nfc)
    s = sub.add_parser("inspect", help="decode a token (QR text, hex or file)")
    s.add_argument("token")
    s.add_argument("--trust", action="append", metavar="KID=PUBHEX")
    s.set_defaults(fn=cmd_inspect)
    s = sub.add_parser("starter", help="write the conformance kit's starter pack")
    s.add_argument("dir")
    s.add_argument("--force", action="store_true")
    s.set_defaults(fn=cmd_starter)
    return ap


def main(argv=None):
    ap = build_parser()
    try:
        a = ap.parse_args(argv)
    except SystemExit as e:  # argparse already printed the usage message
        return 2 if e.code else 0
    try:
        rc = a.fn(a)
    except TokenToolError as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    return rc or 0
