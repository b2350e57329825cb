# What the rider reads: the answer in Indonesian first, English second (docs/validator.md).
#
# A 128x64 OLED fits 16 characters a line at the smallest scale: every text here is at
# most 16 (tests/firmware/test_app_messages.py checks it), written for a rider, not a log.
from app import reasons, record
from app.fares import rupiah
from tokens import reasons as T

# token-layer reasons (1-39) are grouped for the rider: what they can do differs
# (show a new code, refresh the wallet, call the operator), not the cryptographic detail
_TOKEN_DEFAULT = ("TIKET TIDAK SAH", "invalid ticket")

_APP = {
    reasons.REPLAY: ("KODE DIPAKAI", "code used"),
    reasons.DENIED: ("DIBLOKIR", "wallet blocked"),
    reasons.ALLOWANCE_EXHAUSTED: ("SALDO HABIS", "offline limit"),
    reasons.NO_FARE: ("TARIF TIDAK ADA", "no fare for pass"),
    reasons.JOURNAL_FULL: ("MEMORI PENUH", "go to depot"),
    reasons.READER_FAULT: ("ULANGI", "read error"),
    reasons.NO_FARE_TABLE: ("BELUM SIAP", "no fare table"),
    reasons.NO_TRUST_LIST: ("BELUM SIAP", "no trust list"),
    reasons.BUSY: ("ULANGI", "busy, tap again"),
    reasons.STORE_ERROR: ("GANGGUAN", "storage fault"),
    reasons.JOURNAL_ERROR: ("GANGGUAN", "journal fault"),
    reasons.DENY_LIST_BAD: ("GANGGUAN", "deny list fault"),
    reasons.NOT_CONFIGURED: ("BELUM SIAP", "not configured"),
    reasons.INTERNAL: ("GANGGUAN", "internal error"),
}

# token reasons the rider can act on; others: the default
_TOKEN = {
    T.PASS_EXPIRED: ("KEDALUWARSA", "pass expired"),
    T.PASS_NOT_YET_VALID: ("BELUM AKTIF", "not valid yet"),
    T.CLOCK_UNTRUSTED: ("PAKAI NFC", "clock unset"),
    T.CHALLENGE_MISMATCH: ("ULANGI", "tap again"),
    T.UNKNOWN_KEY: ("TIKET TIDAK SAH", "unknown issuer"),
    T.BAD_SIGNATURE: ("TIKET PALSU", "forged ticket"),
    T.PROOF_STALE: ("KODE KEDALUWARSA", "code expired"),
    T.PROOF_FUTURE: ("KODE TIDAK SAH", "code time wrong"),
    T.WRONG_OPERATOR: ("BUKAN TIKET TSM", "other operator"),
    T.BAD_PREFIX: ("BUKAN TIKET", "not a ticket"),
    T.MALFORMED: ("BUKAN TIKET", "not a ticket"),
}


def headline(answer):
    if answer == record.ACCEPTED:
        return "BERHASIL"
    if answer == record.ALREADY_PAID:
        return "SUDAH BAYAR"
    return "DITOLAK"


def lines(d):
    """(headline, detail in Indonesian, detail in English) for a Decision."""
    if d.answer == record.ACCEPTED:
        return "BERHASIL", rupiah(d.fare), "paid, thank you"
    if d.answer == record.ALREADY_PAID:
        return "SUDAH BAYAR", "TIDAK DITAGIH", "already paid"
    text = _APP.get(d.reason) or _TOKEN.get(d.reason, _TOKEN_DEFAULT)
    return "DITOLAK", text[0], text[1]


def fault_lines(fault):
    """Lines for a standing fault (shown while idle): (headline, id, en)."""
    return _FAULTS.get(fault, ("GANGGUAN", fault.upper()[:16], fault))


_FAULTS = {
    "journal_full": ("KE DEPO", "MEMORI PENUH", "journal full"),
    "nfc": ("QR SAJA", "NFC RUSAK", "NFC reader fault"),
    "qr": ("NFC SAJA", "QR RUSAK", "QR scanner fault"),
    "clock": ("PAKAI NFC", "JAM BELUM DISET", "clock unset"),
    "config": ("BELUM SIAP", "KE DEPO", "not configured"),
    "trust": ("BELUM SIAP", "KE DEPO", "no trust list"),
    "fares": ("BELUM SIAP", "KE DEPO", "no fare table"),
    "deny": ("GANGGUAN", "KE DEPO", "deny list fault"),
    "storage": ("GANGGUAN", "KE DEPO", "storage fault"),
    "config_bundle": ("KONFIG DITOLAK", "PAKAI BAWAAN", "config refused"),
    "time": ("JAM DITOLAK", "PANGGIL TEKNISI", "depot time refused"),
}
