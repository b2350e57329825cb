"""A config bundle from the depot (docs/bundles.md kind 4) overlays config.json at boot -
only if it is signed by the operator key config.json pins and every value is within its
range; otherwise it is left out: the fault 'config_bundle', and the validator runs (and
syncs) on config.json - never on a forged or out-of-range setting, never bricked by one
(issue 15)."""
import cbor2

from host import bundles as hb
from host import tokens as ht
from sim.world import World
from tests.host.app_support import ACC, NOW, PAID, REJ, Board


def _board(tmp_path, signer, body=None):
    world = World.load_or_create(tmp_path / "world")
    b = Board(tmp_path, world)
    key = world.keys["operator"] if signer == "operator" else ht.generate_key()
    raw = hb.sign_bundle(hb.CONFIG, 1, body or hb.config_body({"passback_s": 5}), key, NOW)
    (b.prov / "config.bun").write_bytes(raw)
    return b, world


def test_signed_config_bundle_changes_passback(tmp_path):
    b, w = _board(tmp_path, "operator")
    try:
        assert b.boot()["faults"] == []
        assert b.qr(w.qr("regular", NOW), NOW)["answer"] == ACC
        assert b.qr(w.qr("regular", NOW + 3), NOW + 3)["answer"] == PAID
        # passback_s is 5 now (config.json says 60): a new journey after 6 s
        assert b.qr(w.qr("regular", NOW + 6), NOW + 6)["answer"] == ACC
    finally:
        b.close()


def test_forged_config_bundle_is_left_out(tmp_path):
    b, w = _board(tmp_path, "forger")
    try:
        st = b.boot()
        assert st["faults"] == ["config_bundle"], st
        assert "bad_signature" in st["details"]["config_bundle"]
        assert b.qr(w.qr("regular", NOW), NOW)["answer"] == ACC
        # passback_s is config.json's 60, not the forged bundle's 5
        assert b.qr(w.qr("regular", NOW + 6), NOW + 6)["answer"] == PAID
    finally:
        b.close()


def test_out_of_range_config_bundle_cannot_brick(tmp_path):
    # signed by the operator, installed before the ranges were checked: qr_window_s=1000
    # used to stop every tap and every sync; now it is left out with a fault
    b, w = _board(tmp_path, "operator", cbor2.dumps({"qr_window_s": 1000, "passback_s": 5}))
    try:
        st = b.boot()
        assert st["faults"] == ["config_bundle"], st
        assert "5..300" in st["details"]["config_bundle"]
        d = b.qr(w.qr("regular", NOW), NOW)
        assert (d["answer"], d["reason"]) != (REJ, 54) and d["answer"] == ACC, d
        assert b.qr(w.qr("regular", NOW + 6), NOW + 6)["answer"] == PAID
    finally:
        b.close()
