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
    assert messages.lines(_d(record.ACCEPTED, 0, 3500))[:2] == \
        ("BERHASIL", "Rp 3.500")
    assert messages.lines(_d(record.ALREADY_PAID, reasons.ALREADY_PAID))[0] == "SUDAH BAYAR"
    head, idn, en = messages.lines(_d(record.REJECTED, reasons.REPLAY))
    assert head == "DITOLAK" and idn == "KODE DIPAKAI" and en == "code used"
    head, idn, en = messages.lines(_d(record.REJECTED, token_reasons.PASS_EXPIRED))
    assert (head, idn) == ("DITOLAK", "KEDALUWARSA")


def test_every_text_fits_the_screen():
    codes = [c for c in range(80) if reasons.describe(c) != "code %d" % c]
    assert len(codes) == 42   # 0; token 1-25 and 39; app 40-55 but 45
    for code in codes:
        for ans in (record.REJECTED, record.ALREADY_PAID, record.ACCEPTED):
            for line in messages.lines(_d(ans, code, 1000000)):
                assert 0 < len(line) <= 16, (code, line)
    for f in ("journal_full", "nfc", "qr", "clock", "config", "trust", "fares", "deny",
              "storage", "something new"):
        for line in messages.fault_lines(f):
            assert len(line) <= 16, (f, line)


def test_reason_names_from_the_packed_tables():
    assert reasons.describe(0) == "ok"
    assert reasons.describe(token_reasons.MALFORMED) == "malformed"
    assert reasons.describe(token_reasons.CLOCK_UNTRUSTED) == "clock untrusted"
    assert reasons.describe(token_reasons.INTERNAL) == "internal error"
    assert reasons.describe(reasons.REPLAY) == "replay"
    assert reasons.describe(reasons.INTERNAL) == "internal error"
    assert reasons.describe(45) == "code 45" and reasons.describe(30) == "code 30"
    assert reasons.describe(56) == "code 56" and reasons.describe(-1) == "code -1"
    assert token_reasons.name(reasons.REPLAY) is None and reasons.name(1) is None
    # distinct codes, distinct names: the tables were not shifted by one
    names = [reasons.describe(c) for c in range(80)]
    real = [n for n in names if not n.startswith("code ")]
    assert len(real) == len(set(real)) + 1   # "internal error" is both 39 and 55
