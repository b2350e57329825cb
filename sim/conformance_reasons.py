"""Reason codes in a wallet partner's words, for the conformance kit (docs/conformance.md).

The short names are the firmware's own (`firmware/tokens/reason_names.py`, `firmware/app/
reason_names.py`, read from their source, so the kit never disagrees with what a validator
journals). What each code means for a partner and its usual cause are written here, and
docs/conformance.md carries the same table (tests/host/test_conformance.py checks both).

    name(code) -> "unknown key"          parse_expect("unknown-key") -> 7
    explain(code) -> "unknown key: the pass names an issuer key ... Usual cause: ..."
"""

import ast
import functools
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
ACCEPTED, ALREADY_PAID, READER_FAULT, UNKNOWN_KEY = 0, 42, 47, 7

# code -> (what it means for the wallet partner, the usual cause). `None` as the cause:
# the wallet cannot cause it (the validator's own state), listed so a partner reading a
# journal knows it is not theirs to fix.
MEANING = {
    0: ("accepted and charged", None),
    1: ("not a token: not CBOR [pass, proof] of two COSE_Sign1 arrays, or the NFC answer "
        "broke the APDU exchange", "wrong array shape, a non-empty unprotected header, a "
        "signature that is not 64 bytes (DER instead of raw r‖s), a SELECT answer other "
        "than 01 90 00, a status word other than 61 xx / 90 00"),
    2: ("over a size limit (token 512 B, pass 320 B, proof 200 B)",
        "extra claims or long ids; an NFC answer of more than 512 bytes"),
    3: ("QR text does not start with BRT1:", "another scheme prefix, lower case, a URL"),
    4: ("QR text after BRT1: is not base45", "base64 used instead of base45, lower-case "
        "letters, a cut-off text"),
    5: ("not the strict deterministic CBOR the validator accepts",
        "non-shortest integers or lengths, indefinite lengths, tags, floats, duplicate map "
        "keys (encode with canonical/deterministic CBOR)"),
    6: ("protected header is not {1: -7, 4: kid} (pass) / {1: -7} (proof)",
        "another algorithm, the kid in the unprotected header, extra header fields"),
    7: ("the pass's kid is not in the validator's trust list",
        "a key not delivered to the operator, a kid not computed as SHA-256(point)[:8]"),
    8: ("the issuer key's validity has not begun", "a new key used before its not_before"),
    9: ("the issuer key's validity has ended", "passes still signed with a retired key"),
    10: ("the issuer key may not sign wallet passes (usage bit 1)",
          "a key registered for another use"),
    11: ("the pass signature does not verify with the issuer key",
          "signing other bytes than the Sig_structure, a DER signature, the wrong key "
          "behind a copied kid"),
    12: ("the pass claims are not exactly the 9 keys with their types",
          "a missing or extra claim, text where bytes are due, ids outside 4..16 bytes"),
    13: ("the pass has expired (now >= exp)", "the wallet did not refresh the pass"),
    14: ("the pass is not valid yet (iat more than 300 s ahead)",
          "the issuer's clock is ahead, or iat set to the start of a future period"),
    15: ("the pass is for another operator", "operator claim not \"TSM\""),
    16: ("the cnf phone key is not a compressed P-256 key on the curve",
          "an uncompressed key, a y coordinate instead of the y-sign bool, a wrong x"),
    17: ("fare category outside 0..5", "a category number the operator does not have"),
    18: ("the proof payload is not its 3 (QR) / 4 (NFC) fields with their types",
          "a missing counter, a time as text, extra fields"),
    19: ("the proof signature does not verify with the pass's cnf key",
          "the phone signs with another key than the one in its pass"),
    20: ("the proof binds another pass", "pass hash not SHA-256 of the pass's exact bytes, "
          "or a re-encoded pass"),
    21: ("QR proof older than the validator's window (30 s)",
          "a code rendered once and shown for longer, a screenshot, the phone clock behind"),
    22: ("QR proof time ahead of the validator's window (30 s)", "the phone clock ahead"),
    23: ("the NFC proof signed another challenge than this tap's",
          "a cached or precomputed answer instead of signing the TAP command's challenge"),
    24: ("proof for the other channel: an NFC proof without challenge, a QR proof with one",
          "the QR and NFC proof paths swapped in the wallet"),
    25: ("the validator's clock is not set: QR cannot be judged", None),
    39: ("the validator's verifier failed (e.g. out of memory)", None),
    40: ("this proof was already used (replay)",
          "the wallet shows the same code twice instead of a fresh proof per tap"),
    41: ("wallet or pass on the operator's deny list", None),
    42: ("already paid: the same wallet on this validator within a minute (no charge)",
          "a second tap of the same rider; expected behaviour"),
    43: ("the pass's offline allowance is used up on this validator",
          "an allowance smaller than the fare, or too many offline taps"),
    44: ("the fare table has no fare for the pass's category", None),
    46: ("the validator's journal is full", None),
    47: ("the reader could not complete the read (no decision on the token)",
          "a phone-side limit broken: an NFC response over 250 data bytes, an APDU answered "
          "after ~250 ms, the phone taken away mid-exchange, a QR text with "
          "non-printable characters"),
    48: ("no valid fare table installed", None),
    49: ("no valid trust list installed", None),
    50: ("replay store busy: tap again", None),
    51: ("the validator's store could not be written", None),
    52: ("the validator's journal append failed", None),
    53: ("the installed deny list is unreadable", None),
    54: ("the validator is not configured", None),
    55: ("internal error in the validator's decision", None),
}


def _names_string(path):
    """The value of `_NAMES = (...)` in a firmware reasons module (a string literal)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "_NAMES" for t in node.targets):
            return ast.literal_eval(node.value)
    raise LookupError("no _NAMES in %s" % path)


@functools.lru_cache(maxsize=1)
def firmware_names():
    """{code: short name} exactly as the firmware names them (read once, when first
    needed: `python -m sim` itself does not depend on it)."""
    out = {}
    for i, n in enumerate(_names_string(ROOT / "firmware/tokens/reason_names.py").split("|")):
        if n:
            out[i] = n
    for i, n in enumerate(_names_string(ROOT / "firmware/app/reason_names.py").split("|")):
        if n:
            out[40 + i] = n
    return out


def name(code):
    return firmware_names().get(code, "code %s" % code)


def _norm(text):
    return " ".join(str(text).lower().replace("-", " ").replace("_", " ").split())


@functools.lru_cache(maxsize=1)
def _by_name():
    out = {_norm(n): c for c, n in firmware_names().items()}
    out.update({"accepted": ACCEPTED, "already paid": ALREADY_PAID})
    return out


def parse_expect(value):
    """An expected result -> reason code (0 = accepted); ValueError if not one."""
    if isinstance(value, bool):
        raise ValueError("expected result %r is not a reason" % value)
    if isinstance(value, int):
        if value in firmware_names():
            return value
        raise ValueError("unknown reason code %d" % value)
    if isinstance(value, str):
        v = _norm(value)
        if v.isdigit():
            return parse_expect(int(v))
        if v in _by_name():
            return _by_name()[v]
    raise ValueError("expected result %r: give \"accepted\", a reason code or a reason "
                     "name (docs/conformance.md)" % (value,))


def label(code):
    """'accepted', 'already-paid' or '<code> <name>' - how the kit prints a result."""
    if code == ACCEPTED:
        return "accepted"
    if code == ALREADY_PAID:
        return "already-paid"
    return "%d %s" % (code, name(code))


def explain(code):
    meaning, cause = MEANING.get(code, ("reason %s" % code, None))
    text = "%s: %s." % (name(code), meaning)
    if cause:
        text += " Usual cause: %s." % cause
    elif code != ACCEPTED:
        text += " Not caused by the wallet (the validator's own state)."
    return text
