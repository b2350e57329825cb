# A Decision as the console's @@TAP line and the simulator show it (docs/validator.md).
# The loop's, not the decision core's: app/decision.py does not hold it.
from app import record


def summary(d, reason_name=None):
    """A dict of Decision d for the console log line (@@TAP) and the simulator."""
    return {"answer": d.answer, "reason": d.reason, "reason_name": reason_name,
            "fare": d.fare, "channel": "nfc" if d.channel == record.NFC else "qr",
            "t": d.t, "clock_ok": d.clock_ok, "seq": d.seq,
            "cached": d.cached, "journal_full": d.journal_full,
            "wallet_id": _hex(d.wallet_id), "pass_id": _hex(d.pass_id),
            "category": d.category, "proof_id": _hex(d.proof_id),
            "ms": {"read": d.us_read / 1000, "decode": d.us_decode / 1000,
                   "verify": d.us_verify / 1000, "checks": d.us_checks / 1000,
                   "journal": d.us_journal / 1000, "answer": d.us_answer / 1000}}


def _hex(b):
    if b is None:
        return None
    return "".join("%02x" % x for x in b)
