# A fixed real token (minted once by host/tokens; see tests/host/tok_support.py) checked
# by TokenVerifier inside MicroPython: input types, the pass cache, trust replacement and
# a bounded heap over many checks. Every reason code is covered from fresh tokens by
# tests/host/test_tok_reasons.py.
import gc
from binascii import unhexlify

from tokens import reasons as R
from tokens.trust import TrustStore
from tokens.verify import TokenVerifier

NOW = 1790000000
CHALLENGE = bytes(range(16))
TRUST = (
    "818548d16aa163596960345841048f9fdbccafaf6165b36f9139ccb0d21c16983175542ffc80"
    "b57204c97bb063feebe083e7a8c0cd3b85ac577d774de3ba8b9c7f798bc5acb1c57e159e218e"
    "a7861a6a2d65801a6b35118001"
)
OTHER_TRUST = (
    "818548bf6e3480d3f0575358410451590b7a515140d2d784c85608668fdfef8c82fd1f5be524"
    "21554a0dc3d033ede0c17da8904a727d8ae1bf36bf8a79260d012f00d4d80888d1d0bb44fda1"
    "6da41a6aafea001a6ab28d0001"
)
QR = (
    "BRT1:MMGT 9O60GO0FLQ5IKTDBD7C8CK94C-70DH8 TAFN07MDD-EWY0-LD9QT441F90X50324V9"
    "4:54LQVZYPSZ0-.L5*F143EP87E6L682*S PDVHCF:RNR1NAOT/6M:UO69LB8+S9.SAM96H69SB8"
    "BNA646N96ON0$73J6B3PC+NA27B6A34$IW39F4ST+S*U8PMAXQT-RMEJMW6LLIR-8IO:T5.HEHPC"
    "18C8BJCS$YUT%FLTKD3JUH9VFW4OU%7DBWFMAPI%QLJP%HJJWG.FKX*4A6BERK78A1/UDZ9MS7$$"
    "FY*UZ0NXHLAPRCF3BIMB8G1J0.78:ESZHN453-/DU%7Z16TYC8YNEX0C51*O3.%O FH2$4H-4* R"
    "ENJAZO88Q1BR+F61QK:8C+7SOZQTNE0N79NFZSQXV5QR6O2"
)
NFC = (
    "82844da201260448d16aa16359696034a0585fa9016442525457041a6aba7600061a6aafea00"
    "08a101a401022001215820b1f9decbde0643ada87d87187043bb31f3406be4596b5e6208dd5e"
    "0cbfbfb13722f5204857414c4c4554303121485041535330303031220423191b58246354534d"
    "5840198394e747d8de3fe4a144b55311ea18b2eeb16ba74bd8d28ff3ed398de0c8cc3f815877"
    "dfabf36d7d72a36296df4a4cffe2f18a68367c52c799d46ac92d996e8443a10126a0582da401"
    "5089f4de4d653c617d4df44bb612a93bda021a6ab13b8003040450000102030405060708090a"
    "0b0c0d0e0f5840445ff8228946b4c29edc8de5b2195b89148ea94d5f89b8b962a806729702e2"
    "64379daf08d72dee408a1fba5e2aa9ba49d3f68d8713154bf5f6fe81b80e56c5e5"
)


def verifier(body=TRUST):
    return TokenVerifier(TrustStore.from_body(unhexlify(body)), "TSM")


def test_qr_and_nfc_accepted_with_claims():
    v = verifier()
    r = v.check_qr(QR.encode(), NOW, True)
    assert r.ok and r.reason == R.OK, r.detail
    assert r.wallet_id == b"WALLET01" and r.pass_id == b"PASS0001"
    assert r.category == 4 and r.allowance == 7000 and r.counter == 3
    assert r.proof_time == NOW and r.channel == 2 and len(r.proof_id) == 16
    assert r.us_decode >= 0 and r.us_pass > 0 and r.us_proof > 0
    r2 = v.check_nfc(unhexlify(NFC), CHALLENGE, NOW, True)
    assert r2.ok and r2.channel == 1 and r2.cached and r2.counter == 4
    assert r2.proof_id != r.proof_id


def test_input_types_str_bytearray_memoryview_and_line_endings():
    v = verifier()
    assert v.check_qr(QR, NOW, True).ok
    assert v.check_qr(bytearray(QR.encode() + b"\r\n"), NOW, True).ok
    buf = bytearray(512)
    raw = unhexlify(NFC)
    buf[:len(raw)] = raw
    assert v.check_nfc(memoryview(buf)[:len(raw)], bytearray(CHALLENGE), NOW, True).ok


def test_cache_and_trust_replacement():
    v = verifier()
    assert not v.check_qr(QR, NOW, True).cached
    assert v.check_qr(QR, NOW, True).cached
    v.set_trust(TrustStore.from_body(unhexlify(OTHER_TRUST)))
    r = v.check_qr(QR, NOW, True)
    assert r.reason == R.UNKNOWN_KEY and len(v.cache) == 0
    v.set_trust(TrustStore.from_body(unhexlify(TRUST)))
    assert v.check_qr(QR, NOW, True).ok


def test_clock_and_window():
    v = verifier()
    assert v.check_qr(QR, NOW + 31, True).reason == R.PROOF_STALE
    assert v.check_qr(QR, NOW - 31, True).reason == R.PROOF_FUTURE
    assert v.check_qr(QR, 0, False).reason == R.CLOCK_UNTRUSTED
    assert v.check_nfc(unhexlify(NFC), CHALLENGE, 0, False).ok
    assert v.check_nfc(unhexlify(NFC), bytes(16), NOW, True).reason == R.CHALLENGE_MISMATCH
    narrow = TokenVerifier(v.trust, "TSM", qr_window=2)
    assert narrow.check_qr(QR, NOW + 3, True).reason == R.PROOF_STALE
    assert TokenVerifier(v.trust, "XYZ").check_qr(QR, NOW, True).reason == R.WRONG_OPERATOR


def test_heap_is_bounded_over_many_checks():
    v = verifier()
    v.check_qr(QR, NOW, True)
    v.check_qr(QR[:-9], NOW, True)  # the first unusual token loads the strict decoder, once
    gc.collect()
    before = gc.mem_free()
    for _ in range(15):
        assert v.check_qr(QR, NOW, True).ok
        assert not v.check_qr(QR[:-9], NOW, True).ok
    gc.collect()
    assert gc.mem_free() > before - 1024, (before, gc.mem_free())


def test_strict_decoder_loaded_by_the_first_unusual_token_only():
    # docs/validator.md 'Memory': the usual token never loads tokens/general.py; the first
    # token the in-place scan does not take does, and gets its exact reason
    import sys

    from tokens import verify as V
    from unload import forget
    del V._gen[:]
    forget("tokens.general")
    v = verifier()
    assert v.check_nfc(unhexlify(NFC), CHALLENGE, NOW, True).ok
    assert v.check_qr(QR.encode(), NOW, True).ok
    assert "tokens.general" not in sys.modules
    r = v.check_nfc(unhexlify(NFC) + b"\x00", CHALLENGE, NOW, True)
    assert not r.ok and r.reason == R.BAD_CBOR, (r.reason, r.detail)
    assert "tokens.general" in sys.modules
    r = v.check_nfc(unhexlify(NFC)[:-1], CHALLENGE, NOW, True)   # loaded once, kept
    assert not r.ok and r.reason in (R.BAD_CBOR, R.MALFORMED), (r.reason, r.detail)
