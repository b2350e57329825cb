# Short English names of the app's reason codes (app/reasons.py) and of any code, for logs
# and the simulator; app/reasons.py loads this module on first use of reasons.name() or
# reasons.describe() (its __getattr__), so the tap path does not hold the names.
from app.reasons import OK
from tokens import reason_names as token_names

# Short English names of codes 40.. (see tokens/reasons.py for why one string)
_NAMES = (
    "replay|denied|already paid|allowance exhausted|no fare for category||"
    "journal full|reader fault|no fare table|no trust list|replay store busy|"
    "store error|journal error|deny list bad|not configured|internal error"
)


def name(code):
    """Short English name of an app reason code (None if not an app code)."""
    if code == OK:
        return "ok"
    return token_names.lookup(_NAMES, code, 40)


def describe(code):
    """Short English name of any reason code, app or token layer."""
    n = name(code)
    if n is None:
        n = token_names.name(code) or "code %d" % code
    return n
