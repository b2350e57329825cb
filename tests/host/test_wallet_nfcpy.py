"""The NFC path through nfcpy's real ISO-DEP stack: the virtual PN532 is an nfcpy reader
(udp transport, sim/devhost/nfcpy_rf.py), the phone an ISO-DEP card emulation over nfcpy
(sim/nfcwallet.py). The validator's drivers run under MicroPython as on the board."""

import socket
import time

import pytest

from host import tokens as ht
from sim.devhost import DevHost
from sim.devhost.nfcpy_rf import NfcpyAntenna
from sim.nfcwallet import ATS, IsoDepPicc, NfcpyPhone
from sim.wallet import Wallet
from tests.host.drv_support import run_tap

ISSUER = ht.key_from_int(0x5EED)
KEYS = {ht.kid(ht.public_bytes(ISSUER)): ht.public_bytes(ISSUER)}


def free_udp_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture
def rig():
    path = "udp:127.0.0.1:%d" % free_udp_port()
    w = Wallet.issue(ISSUER, b"W-nfcpy-1", b"P-nfcpy-1")
    phone = NfcpyPhone(w, path).start()
    antenna = NfcpyAntenna(path)
    host = DevHost(antenna=antenna)
    host.start()
    yield w, phone, antenna, host
    host.stop()
    phone.stop()
    antenna.close()


def test_tap_through_nfcpy_iso_dep(rig):
    w, phone, antenna, host = rig
    out = run_tap(host, w, phone.present)
    version, tok, _ = out["nfc"]
    assert version == 1 and tok == w.answers[-1][1]
    info = ht.inspect_token(tok, keys=KEYS)
    assert info["pass_sig_ok"] and info["proof_sig_ok"]
    assert phone.sessions >= 1 and antenna.activations >= 1


def test_empty_field_and_phone_leaving(rig):
    w, phone, antenna, host = rig
    t0 = time.monotonic()
    assert antenna.activate() is None  # nobody listening: bounded, not nfcpy's 1 s
    assert time.monotonic() - t0 < 0.8
    phone.present()
    time.sleep(0.2)
    card = antenna.activate()
    assert card is not None and card.ats == ATS and card.sel_res == 0x20
    assert card.sens_res == b"\x00\x04" and card.uid == w.uid
    assert antenna.exchange(card, ht.select_apdu()) == b"\x01\x90\x00"
    phone.remove()
    time.sleep(0.1)
    from sim.devhost.rf import CardGone
    with pytest.raises(CardGone):
        antenna.exchange(card, ht.tap_apdu(b"\x01" * 16))


def test_picc_block_protocol_exact_frames():
    # ISO 14443-4 as the card answers nfcpy's initiator
    echo = IsoDepPicc(lambda apdu: apdu + b"\x90\x00")
    assert echo.handle(b"\xe0\x80") == ATS
    assert echo.handle(b"\x02\x00\xa4") == b"\x02\x00\xa4\x90\x00"
    # the reader chains a command: R(ACK) with the same block number, then the answer
    assert echo.handle(b"\x13\x01\x02") == b"\xa3"
    assert echo.handle(b"\x02\x03") == b"\x02\x01\x02\x03\x90\x00"
    assert echo.handle(b"\xb2") == b"\x02\x01\x02\x03\x90\x00"  # R(NAK): again
    # the card chains a long answer in FSD-3 pieces
    big = IsoDepPicc(lambda apdu: bytes(300) + b"\x90\x00")
    big.handle(b"\xe0\x80")
    first = big.handle(b"\x03\x00")
    assert first[0] == 0x13 and len(first) == 254
    last = big.handle(b"\xa2")
    assert last[0] == 0x02 and len(first) - 1 + len(last) - 1 == 302
    assert big.handle(b"\xc2") == b"\xc2" and big.done
    assert big.handle(b"\x77") is None
