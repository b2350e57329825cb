# What the rider reads: Indonesian first, every line fits the 128-pixel screen (16
# characters of the 8x8 font), every reason code has a text.
from app import messages, reasons, record
from app.decision import Decision
from tokens import reasons as token_reasons


def _d(answer, reason, fare=0):
    d = Decision(record.QR, 1800000000, True)
    d.answer, d.reason, d.fare = answer, reason, fare
    return d


def test_answers_in_indonesian_first():
    assert messages.lines(_d(record.ACCEPTED, 0, 3500), token_reasons.NAMES)[:2] == \
        ("BERHASIL", "Rp 3.500")
    assert messages.lines(_d(record.ALREADY_PAID, reasons.ALREADY_PAID))[0] == "SUDAH BAYAR"
    head, idn, en = messages.lines(_d(record.REJECTED, reasons.REPLAY))
    assert head == "DITOLAK" and idn == "KODE DIPAKAI" and en == "code used"
    head, idn, en = messages.lines(_d(record.REJECTED, token_reasons.PASS_EXPIRED),
                                   token_reasons.NAMES)
    assert (head, idn) == ("DITOLAK", "KEDALUWARSA")


def test_every_text_fits_the_screen():
    codes = list(reasons.NAMES) + list(token_reasons.NAMES)
    for code in codes:
        for ans in (record.REJECTED, record.ALREADY_PAID, record.ACCEPTED):
            for line in messages.lines(_d(ans, code, 1000000), token_reasons.NAMES):
                assert 0 < len(line) <= 16, (code, line)
    for f in ("journal_full", "nfc", "qr", "clock", "config", "trust", "fares", "deny",
              "storage", "something new"):
        for line in messages.fault_lines(f):
            assert len(line) <= 16, (f, line)
