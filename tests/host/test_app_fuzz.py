"""Generated bad input for the validator (hypothesis; moderate example counts): configs,
tap records, QR texts and NFC answers - each gets a typed result (a ConfigError with its
field, a RecordError, a rejection with a token reason that is journaled), never a crash."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.world import World
from tests.host.app_support import NOW, REJ, Board
from tests.support.mp import MPWorker

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
GOOD = {"v": 1, "device_id": "a1b2c3d4e5f6", "operator": "TSM", "bus": "B-017",
        "route": "K1", "wifi": {"ssid": "depot", "psk": "secret-psk"},
        "depot_url": "http://10.0.0.1:8080", "operator_key": "04" + "ab" * 64,
        "qr_window_s": 30, "passback_s": 60, "locked": False}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.text(max_size=20),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=12)


@pytest.fixture(scope="module")
def fw():
    w = MPWorker("tests/host/app_fuzz_mp.py")
    yield w
    w.close()


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("app_fuzz")
    b = Board(tmp, World.load_or_create(tmp / "world"))
    assert b.boot()["faults"] == []
    yield b
    b.close()


@SETTINGS
@given(key=st.sampled_from(sorted(GOOD)), value=json_values)
def test_config_with_one_field_replaced(fw, key, value):
    d = dict(GOOD)
    d[key] = value
    out = fw.ask("C " + json.dumps(d))
    assert not out.startswith("CRASH"), out
    if out != "ok":
        assert out.split(" ", 1)[1].split(".")[0] == key, (d, out)
        assert out.isprintable()


@SETTINGS
@given(doc=json_values | st.text(max_size=60))
def test_config_any_json_or_text(fw, doc):
    text = json.dumps(doc) if not isinstance(doc, str) else doc
    out = fw.ask("C " + text.replace("\n", " "))
    assert out.startswith("ok") or out.startswith("err"), (text, out)


@SETTINGS
@given(data=st.binary(max_size=90))
def test_record_decode_random_bytes(fw, data):
    out = fw.ask("R " + data.hex())
    assert out in ("ok", "err"), out


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.one_of(
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=300),
    st.text(alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:", max_size=400).map(
        lambda s: "BRT1:" + s)))
def test_generated_qr_text_is_a_journaled_token_rejection(board, text):
    d = board.qr(text, NOW)
    assert d["answer"] == REJ and 1 <= d["reason"] <= 39, (text, d)
    assert d["seq"] is not None and d["wallet_id"] is None


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bit=st.integers(min_value=0), cut=st.integers(min_value=0))
def test_damaged_nfc_answer_is_rejected(board, bit, cut):
    ch = bytes(range(16))
    good = board.world.nfc_answer("regular", ch, NOW)
    bad = bytearray(good)
    bad[bit % len(bad)] ^= 1 << (bit % 8)
    for payload in (bytes(bad), good[:cut % len(good)]):
        d = board.ask(op="nfc", payload=payload.hex(), challenge=ch.hex(), now=NOW,
                      clock_ok=True)
        assert d["answer"] == REJ and 1 <= d["reason"] <= 39, (payload.hex(), d)
        assert d["seq"] is not None
