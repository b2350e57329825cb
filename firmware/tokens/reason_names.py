# Short English names of the token-layer reason codes (tokens/reasons.py), for logs and
# the simulator; tokens/reasons.py loads this module on first use of reasons.name() or
# reasons.lookup() (its __getattr__), so the tap path does not hold the names.
# One "|"-separated string indexed by
# code (a dict of 27 str objects took ~2.5 KB more of the heap the tap path must fit).
_NAMES = (
    "ok|malformed|too large|bad prefix|bad base45|bad cbor|bad algorithm|unknown key|"
    "key not yet valid|key expired|key usage|bad signature|pass malformed|"
    "pass expired|pass not yet valid|wrong operator|bad phone key|bad category|"
    "proof malformed|proof bad signature|proof for another pass|proof stale|"
    "proof from the future|challenge mismatch|proof for another channel|"
    "clock untrusted||||||||||||||internal error"
)


def lookup(names, code, base=0):
    """Entry code - base of a "|"-separated names string; None if empty or out of range."""
    k = code - base if isinstance(code, int) else -1
    if k < 0:
        return None
    i = 0
    while k:
        i = names.find("|", i) + 1
        if i == 0:
            return None
        k -= 1
    j = names.find("|", i)
    return names[i:j if j >= 0 else len(names)] or None


def name(code):
    """Short English name of a token reason code (None if not a token code)."""
    return lookup(_NAMES, code)
