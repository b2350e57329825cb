"""The phone wallet (sim/wallet.py, host token tools) against the validator's drivers under
MicroPython on the virtual board: a real token goes over the virtual PN532 (ISO-DEP
APDUs with GET RESPONSE chaining) and over the virtual QR scanner, byte for byte."""

import pytest

from host import tokens as ht
from sim.devhost import DevHost
from sim.wallet import Wallet, WalletError
from tests.host.drv_support import run_tap

ISSUER = ht.key_from_int(0x1234567)
KEYS = {ht.kid(ht.public_bytes(ISSUER)): ht.public_bytes(ISSUER)}


@pytest.fixture
def host():
    h = DevHost()
    h.start()
    yield h
    h.stop()


def test_nfc_and_qr_tokens_arrive_byte_for_byte(host):
    w = Wallet.issue(ISSUER, b"W-000001", b"P-000001", category=1)
    out = run_tap(host, w, lambda: w.present(host))
    version, tok, _ = out["nfc"]
    assert version == 1
    challenge, payload = w.answers[-1]
    assert challenge == bytes(range(16)) and tok == payload
    info = ht.inspect_token(tok, keys=KEYS)
    assert info["pass_sig_ok"] and info["proof_sig_ok"]
    assert len(tok) > 250  # so the answer needed GET RESPONSE chaining
    apdus = host.antenna.card.apdus if host.antenna.card else []
    assert any(c[:2] == b"\x00\xc0" for c, _ in apdus)
    assert out["qr"].startswith("BRT1:")
    qinfo = ht.inspect_token(out["qr"], keys=KEYS)
    assert qinfo["pass_sig_ok"] and qinfo["proof_sig_ok"]


def test_phone_card_answers_like_the_spec():
    w = Wallet.issue(ISSUER, b"W-000002", b"P-000002")
    c = w.card()
    assert c.exchange(ht.select_apdu()) == b"\x01\x90\x00"
    first = c.exchange(ht.tap_apdu(b"\x55" * 16))
    data = ht.join_responses(first, c.exchange)
    assert data == w.answers[-1][1]
    assert c.exchange(b"\x00\xa4\x04\x00\x05\xf0\x00\x00\x00\x00\x00") == b"\x6a\x82"
    assert c.exchange(b"\x00") == b"\x67\x00"


def test_bad_wallet_arguments_are_typed():
    with pytest.raises(WalletError):
        Wallet.issue(ISSUER, b"x", b"P-000003")
    with pytest.raises(WalletError):
        Wallet.issue(ISSUER, b"W-000003", b"P-000003", category=9)
