"""The conformance kit's cases: the manifest `cases.json` and what each case presents.

A case is one rider presentation (or several, `expect` as a list) by QR or NFC, from one
of three sources (docs/conformance.md has the full manifest format):
    "qr": FILE             QR text as the phone shows it (fixed)
    "token": FILE          NFC: the token bytes [pass, proof] the phone answers (fixed)
    "pass" + "phone_key"   the proof is minted at run time by the phone key: over the
                           validator's live challenge (NFC) or at its clock (QR)
and the phone-side limits are checked on what was really sent (`limits_*`), so a partner
reads "NFC response of 307 data bytes: the reader takes 250" rather than a bare reason 47.
"""

import json
import pathlib
import re

from host import tokens as ht
from host.tokens import fmt
from sim import conformance_reasons as cr
from sim.conformance_keys import ConformanceError, hex_or_binary

CASES_MANIFEST = "cases.json"
QR_ALNUM = set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")
YEARS_10 = 10 * 365 * 86400   # proof_time bound: any real skew, never out of uint32
NAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
OPTIONS = {"name", "channel", "expect", "about", "qr", "token", "pass", "phone_key",
           "proof_time", "counter", "challenge", "same_proof", "chunk", "select_answer"}
SELECT_OK = b"\x01\x90\x00"       # format version 1 + 90 00 (docs/tokens.md 'NFC exchange')


def _path(folder, rel, what):
    if not isinstance(rel, str) or not rel or "\0" in rel:
        raise ConformanceError("%s: a file name is due, not %r" % (what, rel))
    return folder / rel


def _read(folder, rel, what):
    try:
        return _path(folder, rel, what).read_bytes()
    except OSError as e:
        raise ConformanceError("%s: cannot read %r (%s)" % (what, rel, e.strerror)) from None


def scanner_line():
    """The longest line the validator's scanner driver keeps, read from the firmware:
    firmware/board.py QR_MAX_LINE, else the GM65 driver's default max_line."""
    for rel, pat in (("firmware/board.py", r"QR_MAX_LINE\s*=\s*const\((\d+)\)"),
                     ("firmware/drivers/gm65.py", r"max_line=(\d+)")):
        try:
            m = re.search(pat, (cr.ROOT / rel).read_text(encoding="utf-8"))
        except OSError:
            continue
        if m:
            return int(m.group(1))
    return fmt.MAX_QR_TEXT


SCANNER_LINE = scanner_line()


class Case:
    def __init__(self, spec, folder, where):
        self.where = where
        unknown = sorted(set(spec) - OPTIONS)
        if unknown:
            raise ConformanceError("%s: unknown field %r" % (where, unknown[0]))
        self.name = spec.get("name")
        if not isinstance(self.name, str) or not NAME_RE.match(self.name):
            raise ConformanceError("%s: name must be 1-64 of A-Z a-z 0-9 . _ -" % where)
        self.where = where = "case %r" % self.name
        self.channel = spec.get("channel")
        if self.channel not in ("qr", "nfc"):
            raise ConformanceError("%s: channel must be \"qr\" or \"nfc\"" % where)
        exp = spec.get("expect")
        exp = exp if isinstance(exp, list) and exp else [exp]
        try:
            self.expect = [cr.parse_expect(e) for e in exp]
        except ValueError as e:
            raise ConformanceError("%s: %s" % (where, e)) from None
        self.about = str(spec.get("about", ""))
        sources = [k for k in ("qr", "token", "pass") if k in spec]
        if len(sources) != 1:
            raise ConformanceError("%s: give exactly one of \"qr\", \"token\", \"pass\"" % where)
        self.source = sources[0]
        if (self.source == "qr") != (self.channel == "qr") and self.source != "pass":
            raise ConformanceError("%s: \"qr\" files are for channel qr, \"token\" files for "
                                   "channel nfc" % where)
        self.fixed = None
        if self.source == "qr":
            self.fixed = _read(folder, spec["qr"], where).decode("utf-8", "replace") \
                .rstrip("\r\n")
        elif self.source == "token":
            self.fixed = hex_or_binary(_read(folder, spec["token"], where), where)
        else:
            self.pass_bytes = hex_or_binary(_read(folder, spec["pass"], where), where)
            if "phone_key" not in spec:
                raise ConformanceError("%s: \"pass\" needs \"phone_key\" (PEM)" % where)
            try:
                self.phone_key = ht.load_key(_path(folder, spec["phone_key"], where))
            except ht.TokenToolError as e:
                raise ConformanceError("%s: %s" % (where, e)) from None
        self.proof_time = _int(spec, "proof_time", 0, -YEARS_10, YEARS_10, where)
        self.counter = _int(spec, "counter", 1, 0, 2 ** 31, where)
        self.chunk = _int(spec, "chunk", fmt.CHUNK, 1, 4096, where)
        self.same_proof = bool(spec.get("same_proof", False))
        ch = spec.get("challenge", "live" if self.channel == "nfc" else "none")
        if ch not in ("live", "none"):
            try:
                ch = bytes.fromhex(ch)
                assert len(ch) == fmt.CHALLENGE_LEN
            except (TypeError, ValueError, AssertionError):
                raise ConformanceError("%s: challenge is \"live\", \"none\" or 32 hex digits"
                                       % where) from None
        self.challenge = ch
        for k in ("proof_time", "counter", "challenge", "same_proof"):
            if k in spec and self.source != "pass":
                raise ConformanceError("%s: %r applies to run-time proofs (\"pass\")" % (where, k))
        for k in ("chunk", "select_answer"):
            if k in spec and self.channel != "nfc":
                raise ConformanceError("%s: %r applies to NFC cases" % (where, k))
        self.select_answer = None         # None: the phone app's right answer, 01 90 00
        if "select_answer" in spec:
            try:
                self.select_answer = bytes.fromhex(spec["select_answer"])
                assert 2 <= len(self.select_answer) <= 258
            except (TypeError, ValueError, AssertionError):
                raise ConformanceError("%s: select_answer is a response APDU in hex (2..258 "
                                       "bytes)" % where) from None
        self._proof = None

    # --- what the phone presents ---------------------------------------------------------
    def proof(self, now, live_challenge=None):
        """A proof minted now by the phone key (or the first one again, same_proof)."""
        if self.same_proof and self._proof is not None:
            return self._proof
        ch = self.challenge
        if ch == "live":
            ch = live_challenge
        elif ch == "none":
            ch = None
        try:
            p = ht.make_proof(self.pass_bytes, self.phone_key, max(0, now + self.proof_time),
                              self.counter, ch)
        except ht.TokenToolError as e:
            raise ConformanceError("%s: %s" % (self.where, e)) from None
        self.counter += 1
        self._proof = p
        return p

    def qr_text(self, now):
        if self.fixed is not None:
            return self.fixed
        return ht.qr_text(self.pass_bytes, self.proof(now))

    def nfc_answer(self, challenge, now):
        if self.fixed is not None:
            return self.fixed
        return ht.nfc_payload(self.pass_bytes, self.proof(now, bytes(challenge)))


def _int(spec, key, default, lo, hi, where):
    v = spec.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ConformanceError("%s: %s must be an integer %d..%d" % (where, key, lo, hi))
    return v


def load_cases(folder):
    """(manifest dict, [Case]) from `folder`/cases.json; ConformanceError if unusable."""
    folder = pathlib.Path(folder)
    path = folder / CASES_MANIFEST
    try:
        m = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConformanceError("cannot read %s: %s" % (path, e.strerror)) from None
    except ValueError as e:
        raise ConformanceError("%s is not JSON: %s" % (path, e)) from None
    if not isinstance(m, dict) or not isinstance(m.get("cases"), list) or not m["cases"]:
        raise ConformanceError("%s: expected {\"cases\": [...]} with at least one case" % path)
    cases, names = [], set()
    for i, spec in enumerate(m["cases"], 1):
        if not isinstance(spec, dict):
            raise ConformanceError("%s: case %d is not an object" % (CASES_MANIFEST, i))
        c = Case(spec, folder, "%s case %d" % (CASES_MANIFEST, i))
        if c.name in names:
            raise ConformanceError("%s: two cases named %r" % (CASES_MANIFEST, c.name))
        names.add(c.name)
        cases.append(c)
    return m, cases


# --- phone-side limits (docs/conformance.md 'Limits'), checked on what was really sent --

IAT_SKEW = 300          # docs/tokens.md: a pass is refused if t + 300 < iat


def token_of_qr(text):
    """The token bytes inside a QR text, or None."""
    if not text.startswith(fmt.PREFIX):
        return None
    try:
        return ht.b45decode(text[len(fmt.PREFIX):])
    except ht.TokenToolError:
        return None


def token_of_apdus(apdus):
    """The phone's answer to the TAP command, reassembled from its responses."""
    data = b"".join(rsp[:-2] for cmd, rsp in apdus if cmd[:2] != b"\x00\xa4")
    return data or None


def _token_limits(token):
    out = []
    if len(token) > fmt.MAX_TOKEN:
        out.append("token is %d bytes: the validator takes at most %d (reason 2)"
                   % (len(token), fmt.MAX_TOKEN))
    try:
        p, q = ht.split_token(bytes(token))
    except ht.TokenToolError:
        return out          # not decodable: the validator's reason says why
    if len(p) > fmt.MAX_PASS:
        out.append("pass is %d bytes: at most %d (reason 2)" % (len(p), fmt.MAX_PASS))
    if len(q) > fmt.MAX_PROOF:
        out.append("proof is %d bytes: at most %d (reason 2)" % (len(q), fmt.MAX_PROOF))
    return out


def clock_limits(token, now, window):
    """By how much a pass's iat or a QR proof's time missed the validator's clock `now`
    (its qr_window_s `window`); for the cases refused for it (14, 21, 22)."""
    try:
        info = ht.inspect_token(bytes(token))
        iat, t = int(info["pass"]["iat"]), int(info["proof"]["time"])
    except (ht.TokenToolError, AttributeError, KeyError, TypeError, ValueError):
        return []
    out = []
    if iat > now + IAT_SKEW:
        out.append("pass iat is %d s ahead of the validator's clock: at most %d (reason 14)"
                   % (iat - now, IAT_SKEW))
    if abs(t - now) > window:
        out.append("QR proof time is %d s %s the validator's clock: the window is +-%d s "
                   "(reason %d)" % (abs(t - now), "behind" if t < now else "ahead of",
                                    window, 21 if t < now else 22))
    return out


def limits_nfc(apdus):
    """Limit lines for an NFC exchange: apdus = [(command, response)] as the phone saw them."""
    out = []
    for cmd, rsp in apdus:
        if cmd[:2] == b"\x00\xa4" and bytes(rsp) != SELECT_OK:
            out.append("SELECT of the wallet AID answered %s: the validator takes exactly "
                       "01 90 00 (format version 1) and refuses anything else (reason 1)"
                       % (bytes(rsp).hex(" ").upper() or "nothing"))
            continue
        n = len(rsp) - 2
        if n > fmt.CHUNK:
            out.append("NFC response APDU of %d data bytes: the validator's reader takes at "
                       "most %d per response (the PN532 carries 262 with the status word); "
                       "send the rest with 61 xx and GET RESPONSE (reason 47)"
                       % (n, fmt.CHUNK))
    token = token_of_apdus(apdus)
    return out + _token_limits(token) if token else out


def limits_qr(text):
    out = []
    if len(text) > SCANNER_LINE:
        out.append("QR text of %d characters: the format and the validator's scanner line "
                   "hold %d (reason 2, too large)" % (len(text), SCANNER_LINE))
    if any(not 0x20 <= ord(c) <= 0x7E for c in text):
        out.append("QR text has characters outside printable ASCII: the scanner line is "
                   "refused as noise (reason 47)")
    elif not set(text) <= QR_ALNUM:
        out.append("QR text has characters outside the QR alphanumeric set (e.g. lower "
                   "case): BRT1 codes are upper-case base45")
    token = token_of_qr(text)
    return out + _token_limits(token) if token else out
