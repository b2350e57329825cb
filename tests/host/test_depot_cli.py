"""Depot CLI, registry API, status page, and the upload-batch decoder against generated
input (every malformed body is a typed DepotError, never a crash)."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
from hypothesis import given, settings, strategies as st

from host import bundles as hb
from host.depot import register, wire
from host.depot.__main__ import main
from host.depot.errors import DepotError
from host.depot.server import DepotServer, status_page
from host.depot.store import DepotStore
from host import synckeys
from tests.support.mp import ROOT


KEY = synckeys.derive(b"k" * 32, synckeys.SYNC)   # what the depot holds for b"k" * 32
TAG = b"\x00" * 16                                # the depot stores tags, never checks them


def T(recs):
    """(seq, t, payload) -> (seq, t, payload, tag)."""
    return [(q, t, p, TAG) for q, t, p in recs]


def H(**kw):
    """A well-formed v2 hello body with `kw` on top."""
    return json.dumps(dict({"v": 2, "nonce": "00" * 16, "trusted": True}, **kw)).encode()


def test_register_api_and_cli(tmp_path, capsys):
    db = str(tmp_path / "d.db")
    assert register(db, "val-9", b"k" * 32) is True
    assert register(db, "val-9", b"j" * 32) is False  # re-provisioned: new secret
    s = DepotStore(db).open()
    # only derived keys and a fingerprint are kept, never the secret
    assert s.sync_key("val-9") == synckeys.derive(b"j" * 32, synckeys.SYNC)
    assert s.fingerprint("val-9") == synckeys.fingerprint(b"j" * 32)
    assert b"j" * 32 not in open(db, "rb").read()
    s.close()
    for bad in [("", b"k" * 32), ("a/b", b"k" * 32), ("val", b"short")]:
        with pytest.raises(DepotError) as e:
            register(db, *bad)
        assert e.value.reason == "bad_input"
    assert main(["--db", db, "register", "val-10", "--secret-hex", "ab" * 16]) == 0
    assert main(["--db", db, "register", "val-11", "--secret-hex", "zz"]) == 1
    assert "not hex" in capsys.readouterr().err
    assert main(["--db", db, "register", "val-11"]) == 1
    assert main(["--db", db, "status"]) == 0
    out = capsys.readouterr().out
    assert "val-9" in out and "val-10" in out and "2 validators" in out
    key = hb.generate_key()
    f = tmp_path / "fares.bin"
    f.write_bytes(hb.sign_bundle(hb.FARES, 4, hb.fares_body({0: 3500}), key))
    assert main(["--db", db, "bundle", str(f), "--operator-pub",
                 hb.public_bytes(key).hex()]) == 0
    assert main(["--db", db, "bundle", str(f), "--operator-pub",
                 hb.public_bytes(hb.generate_key()).hex()]) == 1
    assert "bad_signature" in capsys.readouterr().err
    assert main(["--db", db, "bundle", str(tmp_path / "missing")]) == 1
    assert main(["--db", db, "status", "--json"]) == 0
    st_ = json.loads(capsys.readouterr().out)
    assert st_["bundles"] == {"3": 4}


def test_status_page_shows_devices_pending_and_gaps(tmp_path):
    s = DepotStore(str(tmp_path / "d.db")).open()
    s.register("val-1", b"k" * 32)
    s.ingest("val-1", T([(1, 0, b"a"), (2, 0, b"b"), (5, 0, b"c")]))
    srv = DepotServer(s).start()
    try:
        with urllib.request.urlopen(srv.url + "/", timeout=10) as r:
            page = r.read().decode()
        with urllib.request.urlopen(srv.url + "/v2/status", timeout=10) as r:
            st_ = json.loads(r.read())
    finally:
        srv.stop()
        s.close()
    assert "val-1" in page and "seq 3&ndash;4 missing" in page
    assert "pending: 0 batches, 3 taps" in page
    assert st_["gaps"] == [["val-1", 3, 4]] and st_["devices"][0]["taps"] == 3
    assert "<script" not in status_page(dict(st_, depot_id="<script>"))


def test_serve_starts_with_one_command(tmp_path):
    with socket.socket() as so:
        so.bind(("127.0.0.1", 0))
        port = so.getsockname()[1]
    p = subprocess.Popen([sys.executable, "-m", "host.depot", "--db", str(tmp_path / "d.db"),
                          "serve", "--host", "127.0.0.1", "--port", str(port)],
                         cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        line = p.stdout.readline()
        assert "serving on http://127.0.0.1:%d" % port in line, line + p.stderr.read()
        t0 = time.time()
        with urllib.request.urlopen("http://127.0.0.1:%d/v2/time" % port, timeout=10) as r:
            assert abs(json.loads(r.read())["time"] - t0) < 5
    finally:
        p.terminate()
        p.wait(10)
        p.stdout.close()
        p.stderr.close()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_decode_batch_never_crashes(data):
    try:
        wire.decode_batch(data)
    except DepotError as e:
        assert e.reason in ("malformed", "too_large", "api_version")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2**32 - 1), st.binary(max_size=200)), max_size=30,
                unique_by=lambda r: r[0]), st.integers(0, 400), st.integers(1, 255))
def test_decode_batch_round_trip_and_mutations(recs, pos, xor):
    recs = sorted((s, 1760000000, p, bytes([s & 0xFF]) * 16) for s, p in recs)
    if not recs:
        return
    body = wire.encode_batch("val-1", 7, 1760000000, recs)
    assert wire.decode_batch(body) == ("val-1", 7, 1760000000, recs)
    bad = bytearray(body)
    bad[pos % len(bad)] ^= xor
    try:
        wire.decode_batch(bytes(bad))
    except DepotError as e:
        assert e.reason in ("malformed", "api_version")


def _req(url, body=None, headers=None, method=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read(), r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers


def test_hello_bundles_and_typed_errors(tmp_path):
    s = DepotStore(str(tmp_path / "d.db")).open()
    s.register("val-1", b"k" * 32)
    key = hb.generate_key()
    raw = hb.sign_bundle(hb.FARES, 4, hb.fares_body({0: 3500}), key)
    s.add_bundle(hb.FARES, 4, raw)
    srv = DepotServer(s).start()
    u = srv.url
    try:
        hello = H(time=1, unsent=3, have={"3": 2}, nonce="ab" * 16)
        code, body, _ = _req(u + "/v2/sync/val-1/hello", hello,
                             {"X-BRT-MAC": wire.mac(KEY, hello)})
        ans = json.loads(body)
        assert code == 200 and ans["bundles"] == [{"kind": 3, "version": 4, "size": len(raw),
                                                   "path": "/v2/bundles/3/4"}]
        # the time is MAC'd with the device's sync key over the hello's nonce
        assert ans["time_mac"] == synckeys.time_mac(KEY, b"\xab" * 16, ans["time"])
        hello4 = H(have={"3": 4})
        code, body, _ = _req(u + "/v2/sync/val-1/hello", hello4,
                             {"X-BRT-MAC": wire.mac(KEY, hello4)})
        assert json.loads(body)["bundles"] == []  # nothing newer than what it has
        assert s.devices()[0]["have"] == {"3": 4}
        bad = H(have={"x": 1})
        code, body, _ = _req(u + "/v2/sync/val-1/hello", bad,
                             {"X-BRT-MAC": wire.mac(KEY, bad)})
        assert (code, json.loads(body)["error"]) == (400, "malformed")
        code, body, _ = _req(u + "/v2/sync/nobody/hello", hello, {"X-BRT-MAC": "0" * 64})
        assert (code, json.loads(body)["error"]) == (404, "unknown_device")
        code, body, _ = _req(u + "/v2/bundles/3/4")
        assert code == 200 and body == raw
        code, body, h = _req(u + "/v2/bundles/3/4", headers={"Range": "bytes=100-"})
        assert code == 206 and body == raw[100:]
        assert h["Content-Range"] == "bytes 100-%d/%d" % (len(raw) - 1, len(raw))
        code, body, _ = _req(u + "/v2/bundles/3/4", headers={"Range": "bytes=9999-"})
        assert (code, json.loads(body)["error"]) == (416, "bad_range")
        assert _req(u + "/v2/bundles/3/5")[0] == 404
        assert _req(u + "/nope")[0] == 404
        # any path of version 1: a clear refusal
        assert _req(u + "/v1/bundles/3/4")[0] == 426
        big = b"x" * (wire.MAX_BODY + 1)
        code, body, _ = _req(u + "/v2/sync/val-1/batch", big, {"X-BRT-MAC": "0" * 64})
        assert (code, json.loads(body)["error"]) == (413, "too_large")
    finally:
        srv.stop()
        s.close()


def test_backoff_schedule():
    from host.depot.outbox import BACKOFF_MAX_S, backoff
    assert [backoff(n, lambda: 0.5) for n in (1, 2, 3)] == [5.0, 10.0, 20.0]
    assert backoff(30, lambda: 0.5) == BACKOFF_MAX_S
    assert 0.8 * 5 <= backoff(1) <= 1.2 * 5


def test_same_seq_different_record_is_kept_as_conflict(tmp_path):
    s = DepotStore(str(tmp_path / "d.db")).open()
    s.register("val-1", b"k" * 32)
    assert s.ingest("val-1", T([(1, 0, b"a"), (2, 0, b"b")]), 5) == (2, 0, 0)
    assert s.ingest("val-1", T([(1, 0, b"a"), (2, 0, b"B")]), 5) == (0, 1, 1)
    assert s.conflicts() == [("val-1", 5, 2, 0, b"B")]
    assert s.taps("val-1") == [("val-1", 1, 0, b"a"), ("val-1", 2, 0, b"b")]
    # the same seqs under another journal incarnation are new taps, not conflicts
    assert s.ingest("val-1", T([(1, 0, b"x"), (2, 0, b"y")]), 6) == (2, 0, 0)
    from host.depot.server import DepotApp
    page = status_page(DepotApp(s).status())
    assert "val-1: incarnation 00000005 seq 2" in page and "new_incarnation" in page
    s.close()


JSONV = st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.text(max_size=10),
                     lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c,
                                                                          max_size=3),
                     max_leaves=10)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from host.backoffice.server import BackofficeServer
    from host.backoffice.store import open_store
    tmp = tmp_path_factory.mktemp("fuzz")
    s = DepotStore(str(tmp / "d.db")).open()
    s.register("val-1", b"k" * 32)
    srv = DepotServer(s).start()
    bo = open_store(tmp / "bo.db")
    bo.register_depot("depot-A", b"A" * 32)
    bo.register_validator("v", ["depot-A"], secret=b"k" * 32)
    bsrv = BackofficeServer(bo).start()
    yield srv, bsrv
    srv.stop()
    bsrv.stop()
    s.close()
    bo.close()


@pytest.mark.parametrize("hello", [{"time": 2**70}, {"unsent": -1}, {"have": {"1": 2**64}},
                                   {"time": 1.5}, {"have": {"x": 1}}, {"inc": -1},
                                   {"nonce": "zz"}, {"nonce": "00"}, {"trusted": 1}])
def test_hello_out_of_range_is_malformed(served, hello):
    srv, _ = served
    body = H(**hello)
    code, ans, _ = _req(srv.url + "/v2/sync/val-1/hello", body,
                        {"X-BRT-MAC": wire.mac(KEY, body)})
    assert (code, json.loads(ans)["error"]) == (400, "malformed")


@pytest.mark.parametrize("tap", [["v", 0, 2**70, 0, "00", "00" * 16],
                                 ["v", 0, 1, -1, "00", "00" * 16], ["v", 0, 1, 1, 5, "00" * 16],
                                 ["v" * 65, 0, 1, 1, "00", "00" * 16],
                                 ["v", 0, True, 1, "00", "00" * 16],
                                 ["v", -1, 1, 1, "00", "00" * 16], ["v", 0, 1, 1, "00", "00"]])
def test_backoffice_out_of_range_taps_are_malformed(served, tap):
    from host.backoffice.server import batch_mac
    _, bsrv = served
    body = json.dumps({"depot": "depot-A", "batch": "k-9", "taps": [tap]}).encode()
    code, ans, _ = _req(bsrv.url + "/v2/batches", body, {
        "X-BRT-Depot": "depot-A", "Idempotency-Key": "k-9",
        "X-BRT-MAC": batch_mac(b"A" * 32, body)})
    assert (code, json.loads(ans)["error"]) == (400, "malformed")


@settings(max_examples=120, deadline=None,
          suppress_health_check=[__import__("hypothesis").HealthCheck.function_scoped_fixture])
@given(st.one_of(JSONV, st.fixed_dictionaries({}, optional={
    "time": JSONV, "unsent": JSONV, "v": st.just(2) | JSONV, "nonce": st.just("00" * 16) | JSONV,
    "trusted": JSONV, "inc": JSONV, "last_seq": JSONV,
    "have": st.dictionaries(st.text(max_size=3), JSONV, max_size=3) | JSONV})),
    st.fixed_dictionaries({}, optional={"depot": st.just("depot-A") | JSONV,
                                        "batch": st.just("k-1") | JSONV,
                                        "taps": st.lists(st.lists(JSONV, max_size=5),
                                                         max_size=3) | JSONV}))
def test_generated_json_bodies_get_typed_answers(served, hello, batch):
    from host.backoffice.server import batch_mac
    srv, bsrv = served
    body = json.dumps(hello).encode()
    code, ans, _ = _req(srv.url + "/v2/sync/val-1/hello", body,
                        {"X-BRT-MAC": wire.mac(KEY, body)})
    assert code in (200, 400, 426), ans
    if code != 200:
        assert json.loads(ans)["error"] == {400: "malformed", 426: "api_version"}[code]
    body = json.dumps(batch).encode()
    code, ans, _ = _req(bsrv.url + "/v2/batches", body, {
        "X-BRT-Depot": "depot-A", "Idempotency-Key": "k-1",
        "X-BRT-MAC": batch_mac(b"A" * 32, body)})
    assert code in (200, 400, 403, 409), ans
    if code != 200:
        assert json.loads(ans)["error"] == {400: "malformed", 403: "unregistered_device",
                                            409: "conflict"}[code]


def test_prune_keeps_undelivered_and_anchor(tmp_path, capsys):
    db = str(tmp_path / "d.db")
    s = DepotStore(db).open()
    s.register("val-1", b"k" * 32)
    s.register("val-2", b"k" * 32)
    s.ingest("val-1", T([(i, 0, b"x%d" % i) for i in range(1, 11)]))
    s.ingest("val-2", T([(i, 0, b"y%d" % i) for i in range(1, 6)]))
    s.pack(max_taps=4)  # batches: v1 1-4, v1 5-8, v1 9-10 + v2 1-2, v2 3-5
    for bid in (1, 3, 4):
        s.delivered(bid)  # batch 2 (val-1 seq 5-8) is still pending
    assert s.prune(time.time() + 1) == 4 + 4  # val-1 1-4; val-2 1-4 (5 kept as anchor)
    assert [q for _d, q, _t, _p in s.taps("val-1")] == list(range(5, 11))
    assert [q for _d, q, _t, _p in s.taps("val-2")] == [5]
    assert s.gaps() == [] and s.outbox_status()["pending_taps"] == 4
    s.delivered(2)
    assert s.prune(time.time() + 1) == 5  # val-1 5-9; 10 stays
    s.ingest("val-1", T([(11, 0, b"x11")]))
    s.pack()
    assert s.next_batch(time.time() + 1)[1].endswith(":5")  # a fresh idempotency key
    s.close()
    assert main(["--db", db, "prune", "--days", "0"]) == 1
    assert main(["--db", db, "prune", "--days", "30"]) == 0
    assert "pruned 0 taps" in capsys.readouterr().out


@settings(max_examples=120, deadline=None,
          suppress_health_check=[__import__("hypothesis").HealthCheck.function_scoped_fixture])
@given(st.one_of(JSONV, st.fixed_dictionaries({}, optional={
    "refused": st.lists(st.lists(st.integers(0, 9) | st.text(max_size=40) | JSONV,
                                 min_size=3, max_size=3), max_size=3) | JSONV,
    "time": st.none() | st.fixed_dictionaries({}, optional={
        "offered": st.integers(-1, 2**33) | JSONV, "device": st.integers(0, 2**32) | JSONV,
        "why": st.text(max_size=40) | JSONV}) | JSONV})))
def test_generated_reports_get_typed_answers(served, report):
    # a validator's end-of-session report: stored when well-formed, else 400 malformed
    # and nothing stored (the refused table and alarms unchanged)
    srv, _ = served
    store = srv.app.store
    before = (store.refused("val-1"), len(store.alarms()))
    body = json.dumps(report).encode()
    code, ans, _ = _req(srv.url + "/v2/sync/val-1/report", body,
                        {"X-BRT-MAC": wire.mac(KEY, body)})
    assert code in (200, 400), ans
    if code == 400:
        assert json.loads(ans)["error"] == "malformed"
        assert (store.refused("val-1"), len(store.alarms())) == before


def test_stores_of_api_v1_are_refused_with_a_clear_error(tmp_path):
    import sqlite3
    from host.backoffice.store import BackofficeError, open_store
    for path, table in ((tmp_path / "d.db", "CREATE TABLE taps (id INTEGER PRIMARY KEY, "
                         "device_id TEXT, seq INTEGER, t INTEGER, payload BLOB)"),
                        (tmp_path / "bo.db", "CREATE TABLE taps (device_id TEXT, seq BIGINT, "
                         "payload BLOB, batch_key TEXT)")):
        db = sqlite3.connect(str(path))
        db.execute(table)
        db.commit()
        db.close()
    with pytest.raises(DepotError) as e:
        DepotStore(str(tmp_path / "d.db")).open()
    assert e.value.reason == "store" and "API v1" in str(e.value)
    with pytest.raises(BackofficeError) as e2:
        open_store(tmp_path / "bo.db")
    assert e2.value.reason == "store" and "v1" in str(e2.value)


def test_batch_answer_counts_a_conflict_apart_from_duplicates(tmp_path):
    """docs/sync-api.md: same bytes again = duplicate; other bytes under a stored key = a
    conflict (kept, alarmed), never counted as a duplicate."""
    s = DepotStore(str(tmp_path / "d.db")).open()
    s.register("val-1", b"k" * 32)
    srv = DepotServer(s).start()
    try:
        def send(recs):
            body = wire.encode_batch("val-1", 1, 1760000000, [(q, t, p, b"T" * 16)
                                                              for q, t, p in recs])
            code, ans, _ = _req(srv.url + "/v2/sync/val-1/batch", body,
                                {"X-BRT-MAC": wire.mac(KEY, body)})
            assert code == 200, ans
            return json.loads(ans)
        first = send([(1, 1, b"a"), (2, 2, b"b"), (3, 3, b"c")])
        assert (first["stored"], first["duplicates"], first["conflicts"]) == (3, 0, 0)
        again = send([(2, 2, b"B"), (3, 3, b"c"), (4, 4, b"d")])   # 2 altered, 3 the same
        assert (again["stored"], again["duplicates"], again["conflicts"]) == (1, 1, 1)
        assert [a["kind"] for a in s.alarms() if a["kind"] != "bad_record"] == ["conflict"]
    finally:
        srv.stop()


def test_out_of_range_record_is_stored_forwarded_and_alarmed(tmp_path):
    """docs/ranges.md at the depot: a record outside the table (fare 2^63-1) is acknowledged
    and kept like any other (the depot never drops a tap), with the alarm bad_record."""
    import cbor2
    s = DepotStore(str(tmp_path / "d.db")).open()
    s.register("val-1", b"k" * 32)
    good = cbor2.dumps({1: 1760000000, 2: 0, 3: 2, 4: 0, 5: 0, 9: 3500})
    bad = cbor2.dumps({1: 1760000000, 2: 0, 3: 2, 4: 0, 5: 0, 9: 2 ** 63 - 1})
    assert s.ingest("val-1", [(1, 1, good, b"T" * 16), (2, 2, bad, b"T" * 16)], 1) == (2, 0, 0)
    al = [a for a in s.alarms() if a["kind"] == "bad_record"]
    assert len(al) == 1 and "seq 2" in al[0]["detail"] and "record key 9" in al[0]["detail"]
    assert [q for _d, q, _t, _p in s.taps("val-1")] == [1, 2]


def test_status_of_a_missing_store_and_a_bad_port_are_one_line_errors(tmp_path, capsys):
    from host.backoffice.__main__ import main as bo_main
    missing = tmp_path / "nowhere" / "depot.db"
    assert main(["--db", str(missing), "status"]) == 2
    assert "no store at" in capsys.readouterr().err
    assert not missing.exists() and not missing.parent.exists()   # nothing left behind
    for cli, args in ((main, ["--db", str(tmp_path / "d.db"), "serve"]),
                      (bo_main, ["--store", str(tmp_path / "b.db"), "serve"])):
        for bad in ("99999", "-1", "http"):
            with pytest.raises(SystemExit) as e:
                cli(args + ["--port", bad])
            assert e.value.code == 2
            err = capsys.readouterr().err
            assert "--port" in err and "Traceback" not in err, err
    assert not (tmp_path / "d.db").exists() and not (tmp_path / "b.db").exists()
