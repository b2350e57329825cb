"""The tap decision of DESIGN §4, end to end in MicroPython: real tokens (host/tokens,
cryptography), real signed bundles (host/bundles), the firmware's verifier, the app's
stores and the real journal on the flash model - every wallet kind of the simulator
gives its expected answer, reason and journal record.

The firmware side runs in tests/host/app_worker_mp.py (MicroPython, 128 KB heap).
"""

import pytest

from sim.world import World
from tests.host.app_support import ACC, NOW, PAID, REJ, Board

@pytest.fixture(scope="module")
def board(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("app_decide")
    b = Board(tmp, World.load_or_create(tmp / "world"))
    st = b.boot()
    assert st["faults"] == [], st
    yield b
    b.close()


def _expect(d, answer, reason, fare=0):
    assert (d["answer"], d["reason"], d["fare"]) == (answer, reason, fare), d
    assert d["seq"] is not None, "not journaled: %r" % d


def test_every_wallet_kind_by_qr_and_its_record(board):
    w = board.world
    cases = [
        ("regular", ACC, 0, 3500),
        ("concession", ACC, 0, 1000),
        ("expired", REJ, 13, 0),            # token: pass expired
        ("revoked", REJ, 41, 0),            # app: denied
        ("forged", REJ, 11, 0),             # token: bad signature
        ("screenshot", REJ, 21, 0),         # token: proof stale (shown 60 s later)
        ("other-operator", REJ, 15, 0),     # token: wrong operator
        ("garbage", REJ, 3, 0),             # token: bad prefix
    ]
    got = []
    for name, answer, reason, fare in cases:
        d = board.qr(w.qr(name, NOW), NOW)
        _expect(d, answer, reason, fare)
        assert d["channel"] == "qr"
        got.append((name, d))
    recs = {r[0]: r for r in board.records()}
    for name, d in got:
        seq, t, rec = recs[d["seq"]]
        assert t == NOW and rec["1"] == NOW and rec["2"] == 0 and rec["3"] == 2
        assert (rec["4"], rec["5"], rec["9"]) == (d["answer"], d["reason"], d["fare"])
        if name in ("forged", "garbage"):
            # the signature did not verify (or there was none): no claim is recorded
            assert "6" not in rec and "7" not in rec and "10" not in rec, (name, rec)
        else:
            wid, pid = w.ids[name]
            assert rec["6"] == wid.hex() and rec["7"] == pid.hex(), (name, rec)
            assert rec["11"] == 1  # fare table version
        if d["answer"] == ACC:
            assert len(rec["10"]) == 32 and rec["10"] == d["proof_id"]


def test_nfc_wallets_and_challenge(board):
    t = NOW + 1000  # out of the QR test's passback window
    c1 = bytes(range(16))
    _expect(board.nfc("regular", c1, t), ACC, 0, 3500)
    d = board.nfc("concession", bytes(range(1, 17)), t)
    _expect(d, ACC, 0, 1000)
    assert d["channel"] == "nfc"
    _expect(board.nfc("expired", bytes(16), t), REJ, 13)
    _expect(board.nfc("revoked", bytes(16), t), REJ, 41)
    _expect(board.nfc("forged", bytes(16), t), REJ, 11)
    # a proof recorded for another challenge, replayed to this one
    _expect(board.nfc("screenshot", b"\x07" * 16, t), REJ, 23)
    _expect(board.nfc("other-operator", bytes(16), t), REJ, 15)
    d = board.nfc("garbage", bytes(16), t)
    assert d["answer"] == REJ and 1 <= d["reason"] <= 39 and d["wallet_id"] is None, d
    recs = board.records()
    assert [r[2]["3"] for r in recs] == [1] * 8  # channel NFC


def test_same_wallet_twice_is_already_paid_then_charged_again_after_passback(board):
    w = board.world
    t = NOW + 2000
    _expect(board.qr(w.qr("regular", t), t), ACC, 0, 3500)
    # a new code from the same phone 20 s later: "SUDAH BAYAR", not charged
    d = board.qr(w.qr("regular", t + 20), t + 20)
    _expect(d, PAID, 42, 0)
    # by NFC too: anti-passback is per wallet, not per channel
    _expect(board.nfc("regular", b"\x01" * 16, t + 30), PAID, 42, 0)
    # after passback_s (60) it is a new journey
    _expect(board.qr(w.qr("regular", t + 61), t + 61), ACC, 0, 3500)
    recs = board.records()
    assert [(r[2]["4"], r[2]["9"]) for r in recs] == [(0, 3500), (2, 0), (2, 0), (0, 3500)]


def test_replayed_code_is_refused_and_never_charged_twice(board):
    w = board.world
    t = NOW + 3000
    text = w.qr("concession", t)
    _expect(board.qr(text, t), ACC, 0, 1000)
    _expect(board.qr(text, t + 5), REJ, 40)          # the same code again: replay
    _expect(board.qr(text, t + 100), REJ, 21)        # later it is simply stale


def test_replay_memory_survives_a_reboot(board):
    w = board.world
    t = NOW + 4000
    text = w.qr("concession", t)
    _expect(board.qr(text, t), ACC, 0, 1000)
    st = board.boot()  # power off and on: RAM gone, flash kept
    assert st["faults"] == []
    _expect(board.qr(text, t + 3), REJ, 40)


def test_untrusted_clock_refuses_qr_but_nfc_works(board):
    w = board.world
    t = NOW + 5000
    d = board.qr(w.qr("regular", t), t, clock_ok=False)
    _expect(d, REJ, 25)   # token: clock untrusted (signatures checked, claims recorded)
    d = board.nfc("concession", b"\x05" * 16, 946684800, clock_ok=False, phone_now=t)
    _expect(d, ACC, 0, 1000)
    recs = board.records()
    assert recs[-1][2]["2"] == 1 and recs[-2][2]["2"] == 1   # records marked
    assert recs[-2][2]["6"] == w.ids["regular"][0].hex()


def test_offline_allowance_is_counted_per_pass_and_persisted(board, tmp_path):
    # a pass with a small allowance: 2 regular fares, then refused
    from host import tokens as ht
    w = board.world
    phone = ht.generate_key()
    p = ht.mint_pass(w.keys["issuer"], phone, b"allow-w1", b"allow-p1", 0, 7000,
                     NOW - 86400, NOW + 86400 * 5)
    t = NOW + 6000
    for i, want in enumerate([(ACC, 0, 3500), (ACC, 0, 3500), (REJ, 43, 0)]):
        tt = t + 100 * i   # beyond passback each time
        if i == 2:
            board.boot()   # the sum spent survives a reboot
        text = ht.qr_text(p, ht.make_proof(p, phone, tt, i + 1))
        _expect(board.qr(text, tt), *want)


def test_malformed_inputs_are_typed_rejections(board):
    t = NOW + 7000
    for text in ["", "BRT1:", "BRT1:" + "%%%%", "BRT1:" + "A" * 2000, "\x00\xff",
                 "BRT1:" + "0" * 9]:
        d = board.qr(text, t)
        assert d["answer"] == REJ and 1 <= d["reason"] <= 39 and d["seq"] is not None, (text, d)
    for payload in ["", "82", "8240", "ff" * 600]:
        d = board.ask(op="nfc", payload=payload, challenge="00" * 16, now=t, clock_ok=True)
        assert d["answer"] == REJ and 1 <= d["reason"] <= 39, (payload, d)
