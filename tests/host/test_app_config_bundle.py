"""A config bundle from the depot (docs/bundles.md kind 4) overlays config.json at boot -
only if it is signed by the operator key config.json pins; otherwise the validator stops
with the fault 'config' (every tap refused, reason 54) instead of running on a forged
setting."""

from host import bundles as hb
from host import tokens as ht
from sim.world import World
from tests.host.app_support import ACC, NOW, PAID, REJ, Board


def _board(tmp_path, signer):
    world = World.load_or_create(tmp_path / "world")
    b = Board(tmp_path, world)
    key = world.keys["operator"] if signer == "operator" else ht.generate_key()
    raw = hb.sign_bundle(hb.CONFIG, 1, hb.config_body({"passback_s": 5}), key, NOW)
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


def test_forged_config_bundle_stops_the_validator(tmp_path):
    b, w = _board(tmp_path, "forger")
    try:
        st = b.boot()
        assert "config" in st["faults"], st
        d = b.qr(w.qr("regular", NOW), NOW)
        assert (d["answer"], d["reason"]) == (REJ, 54), d
    finally:
        b.close()
