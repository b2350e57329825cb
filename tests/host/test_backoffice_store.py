"""The back office on SQLite and on a real PostgreSQL (throw-away cluster): idempotent
ingest, settlement, proofs used twice, passes over allowance, signed deny deltas, and the
HTTP API's typed refusals."""

import hashlib
import hmac
import json
import struct
import urllib.error
import urllib.request

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from host import bundles as hb
from host import synckeys
from host.backoffice.server import BackofficeServer, batch_mac
from host.backoffice.store import BackofficeError, open_store
from tests.host.backoffice_pg import pg_cluster  # noqa: F401 - session fixture

KEY = hb.generate_key()
PUB = hb.public_bytes(KEY)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        s = open_store(tmp_path / "bo.db")
    else:
        s = open_store(request.getfixturevalue("pg_cluster").new_database())
    s.register_depot("depot-A", b"A" * 32)
    s.register_depot("depot-B", b"B" * 32)
    for v in ("v1", "v2"):
        s.register_validator(v, ["depot-A", "depot-B"], secret=SECRETS[v])
    yield s
    s.close()


SECRETS = {"v1": b"1" * 32, "v2": b"2" * 32}


def T(taps, inc=1):
    """(device, seq, t, payload) -> (device, inc, seq, t, payload, tag) as tagged by the
    validator itself (its record key)."""
    return [(d, inc, q, t, p, synckeys.record_tag(synckeys.derive(SECRETS[d], synckeys.RECORD),
                                                  d, inc, q, t, p)) for d, q, t, p in taps]


def rec(wallet, proof, fare=3500, answer=0, pass_id=None, allowance=None, t=1760000000):
    m = {1: t, 2: 0, 3: 1, 4: answer, 5: 0 if answer == 0 else 41, 6: wallet,
         7: pass_id or wallet, 8: 0, 9: fare, 10: proof, 11: 1}
    if allowance is not None:
        m[12] = allowance
    return cbor2.dumps(m)


def test_ingest_is_idempotent(store):
    taps = T([("v1", s, 1760000000 + s, rec(b"w1", b"p%d" % s)) for s in range(1, 11)])
    ans = {"taps": 10, "new": 10, "duplicates": 0, "conflicts": 0, "forged": 0}
    assert store.ingest("depot-A", "depot-A:1", taps) == dict(ans, duplicate_batch=False)
    # the same batch again (a retry after a lost answer): first answer, nothing applied
    assert store.ingest("depot-A", "depot-A:1", taps) == dict(ans, duplicate_batch=True)
    # the same taps in another batch (depot re-packed them): stored once
    assert store.ingest("depot-A", "depot-A:2", taps[5:] + T([("v1", 11, 1, rec(b"w1", b"q"))])) \
        == {"taps": 6, "new": 1, "duplicates": 5, "conflicts": 0, "forged": 0,
            "duplicate_batch": False}
    assert store.count() == 11
    # another depot's key is another namespace: neither a conflict nor a replayed answer
    assert store.ingest("depot-B", "depot-A:1", taps)["duplicate_batch"] is False
    # the same key of the same depot with other content: refused, alarmed
    with pytest.raises(BackofficeError) as e:
        store.ingest("depot-A", "depot-A:1", taps[:3])
    assert e.value.reason == "conflict" and e.value.status == 409
    assert [a["kind"] for a in store.alarms()] == ["key_reuse"]
    # the same seqs under a new journal incarnation are new taps (and an alarm)
    assert store.ingest("depot-A", "depot-A:3", T(
        [("v1", 1, 1, rec(b"w1", b"z"))], inc=2))["new"] == 1
    assert store.count() == 12 and store.alarms()[-1]["kind"] == "new_incarnation"


def test_settlement_double_use_allowance_and_deny_deltas(store):
    w1, w2, w3 = b"wallet-1", b"wallet-2", b"wallet-3"
    store.register_pass(w3, w3, 5000)  # issuer data for a pass whose records carry no 12
    taps = [
        ("v1", 1, 0, rec(w1, b"proof-a")),
        ("v2", 1, 0, rec(w1, b"proof-a")),             # same proof on a second validator
        ("v1", 2, 0, rec(w2, b"proof-b", allowance=10000)),
        ("v1", 3, 0, rec(w2, b"proof-c", allowance=10000)),
        ("v1", 4, 0, rec(w2, b"proof-d", allowance=10000)),
        ("v1", 5, 0, rec(w2, b"proof-e", allowance=10000)),  # 14000 > 10000
        ("v1", 6, 0, rec(w3, b"proof-f", fare=1000)),
        ("v1", 7, 0, rec(w3, b"proof-g", answer=1, fare=0)),  # rejected: not settled
        ("v1", 8, 0, b"\xff\x00garbage"),                    # kept, flagged
    ]
    store.ingest("depot-A", "k1", T(taps))
    assert store.settlement() == {w1.hex(): {"taps": 2, "rupiah": 7000},
                                  w2.hex(): {"taps": 4, "rupiah": 14000},
                                  w3.hex(): {"taps": 1, "rupiah": 1000}}
    assert store.proofs_used_twice() == [(b"proof-a".hex(), 2, 2, w1.hex())]
    assert store.over_allowance() == [(w2.hex(), w2.hex(), 14000, 10000)]
    assert [b[:2] for b in store.bad_records()] == [("v1", 8)]
    # publish: wallet 1 (proof used twice), pass 2 (over allowance)
    assert store.publish(KEY) == 1
    assert store.publish(KEY) is None  # nothing new
    store.ingest("depot-B", "k2", T([("v1", 9, 0, rec(w3, b"proof-f", fare=1000))]))
    assert (b"proof-f".hex(), 2, 1, w3.hex()) in store.proofs_used_twice()  # one validator
    assert store.publish(KEY) == 2  # proof-f now used twice: wallet 3
    d1, d2 = [hb.parse_bundle(raw, PUB, expect_kind=hb.DENY_DELTA)
              for raw in store.deltas_since(0)]
    entries = hb.merge_delta(hb.merge_delta(set(), 0, d1), 1, d2)
    assert entries == {hb.deny_entry(b"W", w1), hb.deny_entry(b"P", w2),
                       hb.deny_entry(b"W", w3)}
    assert store.deltas_since(1) == [d2.raw]


def _post(url, body, depot="depot-A", key="k-1", mac=None, secret=b"A" * 32):
    req = urllib.request.Request(url + "/v2/batches", data=body, method="POST", headers={
        "X-BRT-Depot": depot, "Idempotency-Key": key,
        "X-BRT-MAC": mac or batch_mac(secret, body)})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_http_api_refusals(tmp_path):
    s = open_store("sqlite:%s" % (tmp_path / "bo.db"))
    s.register_depot("depot-A", b"A" * 32)
    s.register_validator("v1", ["depot-A"], secret=SECRETS["v1"])
    srv = BackofficeServer(s, operator_token="op-secret").start()
    try:
        d, i, q, t, p, g = T([("v1", 1, 5, rec(b"w", b"p"))])[0]
        body = json.dumps({"depot": "depot-A", "batch": "k-1",
                           "taps": [[d, i, q, t, p.hex(), g.hex()]]}).encode()
        assert _post(srv.url, body) == (200, {"taps": 1, "new": 1, "duplicates": 0,
                                              "conflicts": 0, "forged": 0,
                                              "duplicate_batch": False})
        assert _post(srv.url, body)[1]["duplicate_batch"] is True
        assert _post(srv.url, body, mac="0" * 64) == (401, {"error": "bad_mac",
                                                            "detail": "depot-A"})
        assert _post(srv.url, body, depot="nobody")[1]["error"] == "unknown_depot"
        assert _post(srv.url, body, key="k-2")[1]["error"] == "malformed"  # key != body
        for bad in (b"{", b"[]", json.dumps({"depot": "depot-A", "batch": "k-1",
                                             "taps": [["v1", "x", 5, "zz"]]}).encode()):
            assert _post(srv.url, bad)[1]["error"] == "malformed"
        # rider data: the operator credential or 401 (docs/sync-api.md "Operator credential")
        for auth in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Bearer \xff"}):
            try:
                urllib.request.urlopen(urllib.request.Request(srv.url + "/v2/report",
                                                              headers=auth), timeout=10)
                raise AssertionError("report without the credential")
            except urllib.error.HTTPError as e:
                assert (e.code, json.loads(e.read())["error"]) == (401, "operator_credential")
        with urllib.request.urlopen(urllib.request.Request(
                srv.url + "/v2/report", headers={"Authorization": "Bearer op-secret"}),
                timeout=10) as r:
            rep = json.loads(r.read())
        assert rep["taps"] == 1 and rep["settlement"] == {b"w".hex(): {"taps": 1,
                                                                       "rupiah": 3500}}
        with urllib.request.urlopen(srv.url + "/v2/deny/deltas?since=0", timeout=10) as r:
            assert json.loads(r.read()) == {"latest": 0, "deltas": []}
    finally:
        srv.stop()
        s.close()


def test_poisoned_fare_is_kept_aside_and_reports_go_on(store):
    """Issue 16 bar: taps with fare 2^63-1 from an authenticated device (good tags) are kept
    aside with an alarm, never settled; the sums, the report and deny publishing go on, also
    after a restart and over a store written before the range check (docs/ranges.md)."""
    big = 2 ** 63 - 1
    taps = T([("v1", 1, 1760000001, rec(b"w1", b"p1")),
              ("v1", 2, 1760000002, rec(b"w1", b"p2", fare=big)),
              ("v1", 3, 1760000003, rec(b"w1", b"p3", fare=big)),
              ("v1", 4, 1760000004, rec(b"w1", b"p4", fare=2 ** 32)),   # above MAX_FARE
              ("v2", 1, 1760000005, rec(b"w2", b"p5", pass_id=b"pp", allowance=big))])
    out = store.ingest("depot-A", "depot-A:1", taps)
    assert out["new"] == 5 and out["forged"] == 0
    bad = store.bad_records()
    assert sorted((d, q) for d, q, _w in bad) == [("v1", 2), ("v1", 3), ("v1", 4), ("v2", 1)]
    assert all("docs/ranges.md" in w for _d, _q, w in bad)
    assert [a["kind"] for a in store.alarms()].count("bad_record") == 4
    assert store.settlement() == {b"w1".hex(): {"taps": 1, "rupiah": 3500}}
    assert store.over_allowance() == []
    store.publish(KEY)   # runs without an overflow (nothing to deny here)
    # a store from before the check holds such a row as a tap: the sums leave it out
    store._tx(lambda db: store._x(db, "UPDATE taps SET answer=0, fare=?, bad=NULL, wallet=? "
                                  "WHERE device_id='v1' AND seq IN (2, 3)", (big, b"w1")))
    assert store.settlement() == {b"w1".hex(): {"taps": 1, "rupiah": 3500}}
    assert store.over_allowance() == []
    srv = BackofficeServer(store, operator_token="op-secret-0123456789").start()
    try:
        req = urllib.request.Request(srv.url + "/v2/report", headers={
            "Authorization": "Bearer op-secret-0123456789"})
        with urllib.request.urlopen(req, timeout=10) as r:
            rep = json.loads(r.read())
        assert rep["settlement"] == {b"w1".hex(): {"taps": 1, "rupiah": 3500}}
        body = json.dumps({"depot": "depot-A", "batch": "k-9", "taps": [
            [d, i, q, t, p.hex(), g.hex()] for d, i, q, t, p, g in
            T([("v1", 9, 1760000009, rec(b"w1", b"p9", fare=big))])]}).encode()
        assert _post(srv.url, body, key="k-9")[0] == 200   # kept aside, not a 5xx
        with urllib.request.urlopen(srv.url + "/v2/status", timeout=10) as r:
            assert json.loads(r.read())["alarms"][-1]["kind"] == "bad_record"
    finally:
        srv.stop()


@settings(max_examples=200, deadline=None)
@given(key=st.binary(min_size=32, max_size=32),
       dev=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=16),
       inc=st.integers(0, 2**32 - 1), seq=st.integers(0, 2**32 - 1),
       t=st.integers(0, 2**32 - 1), payload=st.binary(max_size=120))
def test_the_batch_tagger_is_the_documented_record_tag(key, dev, inc, seq, t, payload):
    # ingest checks tags with record_tagger (an HMAC state copied per record); it must give
    # the tag of docs/sync-api.md byte for byte, written out here independently
    msg = b"BRT-REC-v1|" + dev.encode() + b"|" + struct.pack(">III", inc, seq, t) + payload
    want = hmac.new(key, msg, hashlib.sha256).digest()[:16]
    tagger = synckeys.record_tagger(key, dev)
    assert tagger(inc, seq, t, payload) == want
    assert tagger(inc, seq, t, payload) == want       # the prefix state is not consumed
    assert synckeys.record_tag(key, dev, inc, seq, t, payload) == want
