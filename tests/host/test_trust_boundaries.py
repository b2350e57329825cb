"""Issue 15: the trust boundaries of sync, attacked and broken on purpose. Each test replays
one finding - a lying depot clock, a wiped journal, a rebuilt depot, a cross-depot
idempotency key, cross-depot forged records, an out-of-range config, an unreported refused
bundle, slow sync while parked - and asserts it is now refused or alarmed, with no tap lost
or forged. Real parts: the firmware under MicroPython (tests/host/sync_validator.py and
depot_link_mp.py), the depot and the back office over HTTP on loopback, SQLite and a
throw-away PostgreSQL cluster."""

import hashlib
import http.server
import json
import os
import threading
import time
import urllib.error
import urllib.request

import cbor2
import pytest

from host import bundles as hb
from host import synckeys
from host.backoffice.server import BackofficeServer, batch_mac
from host.backoffice.store import open_store
from host.depot.__main__ import main as depot_main
from host.depot.outbox import Uplink
from host.depot.server import status_page
from host.depot.store import DepotStore
from tests.host.backoffice_pg import pg_cluster  # noqa: F401 - session fixture
from tests.host.sync_support import (OPKEY, OPPUB, RECORD_KEY, SECRET, SYNC_KEY, Depot,
                                     Validator, _MpyWorker, gen_rec)

DAY = 86400
DEPOT_A, DEPOT_B = b"depot-A-secret-for-the-uplink-01", b"depot-B-secret-for-the-uplink-02"


def _post(url, body, headers=None):
    req = urllib.request.Request(url, data=body, method="POST", headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()


class Link:
    """firmware/app/depot.py in MicroPython (tests/host/depot_link_mp.py)."""

    def __init__(self, tmp, url, device="val-1", fresh=True, t=None, trusted=True,
                 bundle_url=None):
        # the app's depot link with the sync client and bundle installs: the simulator's
        # heap for the whole validator (sim/launcher.py), not the tap path's 128 KB
        self.w = _MpyWorker(os.path.join(os.path.dirname(__file__), "depot_link_mp.py"),
                            heap="384K")
        os.makedirs(os.path.join(str(tmp), "data-" + device), exist_ok=True)
        self.st = self.ask({"op": "init", "flash": os.path.join(str(tmp), device + ".flash"),
                            "data": os.path.join(str(tmp), "data-" + device), "url": url,
                            "device": device, "secret": SECRET.hex(), "opkey": OPPUB.hex(),
                            "fresh": fresh, "t": int(time.time()) if t is None else t,
                            "trusted": trusted, "bundle_url": bundle_url})

    def ask(self, req):
        out = json.loads(self.w.ask(json.dumps(req)))
        if "exc" in out:
            raise AssertionError("depot link harness: " + out["exc"])
        assert not out.get("timeout"), out
        return out

    def run(self, ms, until=None):
        return self.ask({"op": "run", "ms": ms, "until": until})

    def close(self):
        self.w.close()


@pytest.fixture
def depot(tmp_path):
    d = Depot(tmp_path / "depot.db")
    d.store.set_meta("depot_id", "depot-A")
    d.store.register("val-1", SECRET)
    yield d
    d.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def bo(request, tmp_path):
    s = open_store(tmp_path / "bo.db") if request.param == "sqlite" else \
        open_store(request.getfixturevalue("pg_cluster").new_database())
    s.register_depot("depot-A", DEPOT_A)
    s.register_depot("depot-B", DEPOT_B)
    s.register_validator("val-1", ["depot-A"], secret=SECRET)
    s.register_validator("val-2", ["depot-A"], secret=SECRET)
    s.register_validator("val-b", ["depot-B"], secret=SECRET)
    srv = BackofficeServer(s).start()
    yield s, srv
    srv.stop()
    s.close()


# --- 1. the lying depot clock ------------------------------------------------------------

class _FakeAP(http.server.BaseHTTPRequestHandler):
    """A fake depot access point (it has the Wi-Fi password, not the device's keys): it
    says it is three days earlier and claims to have stored every batch."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path.endswith("/hello"):
            ans = {"v": 2, "time": int(time.time()) - 3 * DAY, "time_mac": "ab" * 32,
                   "bundles": []}
        elif self.path.endswith("/batch"):
            n = body[5]
            count = int.from_bytes(body[14 + n:16 + n], "big")
            # the last seq of the batch, found by walking the records
            i, last = 16 + n, 0
            for _ in range(count):
                last = int.from_bytes(body[i:i + 4], "big")
                i += 10 + int.from_bytes(body[i + 8:i + 10], "big") + 16
            ans = {"acked": last, "ack_mac": "cd" * 32}
        else:
            ans = {"ok": True}
        data = json.dumps(ans).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)


def test_fake_access_point_can_neither_set_the_clock_nor_make_taps_vanish(tmp_path):
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeAP)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    v = Validator(tmp_path, "http://127.0.0.1:%d" % srv.server_address[1])
    try:
        v.gen(30)
        r = v.sync(stop_on_fail=True)
        # the time was refused (not MAC'd over our nonce), the acknowledgement too
        assert r["times"] == [] and r["time_refused"][2] == "bad_mac", r
        assert r["last_error"].startswith("bad_ack"), r
        assert r["unsent"] == 30 and r["acked"] == -1   # every tap still on the validator
    finally:
        v.close()
        srv.shutdown()


def test_lying_depot_clock_is_refused_shown_journaled_and_reported(tmp_path, depot):
    now = int(time.time())
    liar = {"t": now - 3 * DAY}
    depot.server.app.clock = lambda: liar["t"]   # the depot's own clock lies (or is wrong)
    link = Link(tmp_path, depot.url, t=now, trusted=True)
    try:
        st = link.run(20000, until="done")
        # refused: a trusted clock moves by at most 600 s per sync; shown as a fault
        assert st["rtc"] == [now, True] and "time" in st["faults"], st
        assert st["time_refused"][2] == "step"
        # journaled: an event record (answer 3, reason 56, key 13 = the time offered)
        assert [e[1:] for e in st["events"]] == [[56, now - 3 * DAY]], st
        # reported: the depot shows it (devices and alarms); the event went up with the taps
        d = depot.store.devices()[0]
        assert d["time_refused"]["why"] == "step" and d["time_refused"]["offered"] == liar["t"]
        assert any(a["kind"] == "time_refused" for a in depot.store.alarms())
        assert "refused: step" in status_page(depot.server.app.status())
        assert len(depot.store.taps("val-1")) == 1 and st["unsent"] == 0
        # taps go on; a time earlier than the newest journaled record is refused, even for
        # a clock that is unset (its DS3231 battery gone)
        link.ask({"op": "tap", "n": 2})
        link.ask({"op": "clock", "t": 946684800, "trusted": False})
        liar["t"] = now - 60
        st = link.run(20000, until="done")
        assert st["rtc"] == [946684800, False] and st["time_refused"][2] == "before_last"
        assert [e[1] for e in st["events"]] == [56, 56] and st["unsent"] == 0, st
        # parked at that depot: the same refusal is not journaled again at every poll
        st = link.run(25000)
        assert st["sessions"] >= 4 and len(st["events"]) == 2, st
        # the honest time within the bound is taken, and the fault clears
        link.ask({"op": "clock", "t": now - 100, "trusted": True})
        liar["t"] = now + 5
        st = link.run(20000, until="done")
        assert st["rtc"] == [now + 5, True] and "time" not in st["faults"], st
        assert len(depot.store.taps("val-1")) == 4   # 2 taps and the 2 events journaled
    finally:
        link.close()


# --- 2. the wiped journal ----------------------------------------------------------------

def test_wiped_journal_new_incarnation_no_tap_lost_and_alarmed(tmp_path, depot, bo):
    store, srv = bo
    v = Validator(tmp_path, depot.url)
    try:
        v.gen(10)
        assert v.sync()["unsent"] == 0
        inc1 = depot.store.devices()[0]["incarnation"]
        v.gen(4, base=100)                 # four taps never uploaded: lost with the journal
        v.start(fresh=True)                # the journal is wiped: seqs start at 1 again
        v.gen(6, base=200)
        r = v.sync()
        assert r["unsent"] == 0 and r["state"] == 6, r
    finally:
        v.close()
    taps = depot.store.taps_full("val-1")
    incs = sorted(set(t[1] for t in taps))
    assert len(taps) == 16 and len(incs) == 2 and inc1 in incs    # 10 + 6, none taken for
    assert depot.store.conflicts() == []                          # an old one
    al = [a for a in depot.store.alarms() if a["kind"] == "new_incarnation"]
    assert len(al) == 1 and "10 taps stored under the old one" in al[0]["detail"], al
    assert "new_incarnation" in status_page(depot.server.app.status())
    up = Uplink(depot.store, srv.url, DEPOT_A)
    assert up.run_once() >= 1 and up.last_error is None
    assert store.count() == 16
    keys = store.tap_keys(accepted_only=False, with_inc=True)
    assert {(d, i, s) for d, i, s, _t, _p, _g in taps} == keys
    assert any(a["kind"] == "new_incarnation" for a in store.alarms())
    assert "new_incarnation" in _get(srv.url + "/")
    # settled: every accepted tap of both journals counts
    want = sum(3500 for i in range(10) if gen_rec(i)[4] == 0) + \
        sum(3500 for i in range(6) if gen_rec(i, 200)[4] == 0)
    assert sum(w["rupiah"] for w in store.settlement().values()) == want


# --- 3. the rebuilt depot ----------------------------------------------------------------

def test_rebuilt_depot_gets_new_keys_old_answers_never_replayed(tmp_path, bo):
    store, srv = bo
    old = Depot(tmp_path / "old.db")
    old.store.set_meta("depot_id", "depot-A")
    old.store.register("val-1", SECRET)
    v = Validator(tmp_path, old.url)
    try:
        v.gen(20)
        assert v.sync()["unsent"] == 0
        assert Uplink(old.store, srv.url, DEPOT_A, batch_taps=10).run_once() == 2
        old.stop()
        # rebuilt: a fresh database, the same depot id, the validator registered again
        new = Depot(tmp_path / "new.db")
        new.store.set_meta("depot_id", "depot-A")
        new.store.register("val-1", SECRET)
        v.args["url"] = new.url
        v.start()
        v.gen(15, base=500)
        assert v.sync()["unsent"] == 0
        up = Uplink(new.store, srv.url, DEPOT_A, batch_taps=10)
        assert up.run_once() == 2 and up.last_error is None
        # the new database's keys differ from the old ones: nothing was answered from an
        # old batch, every tap is there, and the rebuild is an alarm
        assert store.count() == 35
        assert any(a["kind"] == "depot_rebuilt" for a in store.alarms())
        new.stop()
        # an old-style rebuild that reuses the old database's keys (its incarnation copied
        # over, its batch numbers starting at 1 again) with other content: refused with a
        # conflict and an alarm - the depot keeps those taps pending, none is lost
        third = Depot(tmp_path / "third.db")
        third.store.set_meta("depot_id", "depot-A")
        third.store.set_meta("db_inc", old_inc(tmp_path))
        third.store.register("val-1", SECRET)
        v.args["url"] = third.url
        v.start()
        v.gen(3, base=900)
        assert v.sync()["unsent"] == 0
        reuse = Uplink(third.store, srv.url, DEPOT_A, batch_taps=10)
        assert reuse.run_once() == 0 and "409" in reuse.last_error, reuse.last_error
        assert any(a["kind"] == "key_reuse" for a in store.alarms())
        assert third.store.outbox_status()["pending_taps"] == 3 and store.count() == 35
        third.stop()
    finally:
        v.close()


def old_inc(tmp_path):
    s = DepotStore(str(tmp_path / "old.db")).open()
    try:
        return s.meta("db_inc")
    finally:
        s.close()


# --- 4. the cross-depot idempotency key --------------------------------------------------

def _batch(depot, key, taps, secret):
    body = json.dumps({"depot": depot, "batch": key, "taps": taps}).encode()
    return body, {"X-BRT-Depot": depot, "Idempotency-Key": key,
                  "X-BRT-MAC": batch_mac(secret, body)}


def _tap(dev, seq, inc=7, key=RECORD_KEY, payload=None, tag=None):
    payload = payload or cbor2.dumps({1: 1780000000 + seq, 2: 0, 3: 2, 4: 0, 5: 0,
                                      6: b"W" + bytes([seq]), 7: b"P" + bytes([seq]), 8: 0,
                                      9: 3500, 10: hashlib.sha256(b"%d" % seq).digest()[:16]})
    tag = tag or synckeys.record_tag(key, dev, inc, seq, 1780000000 + seq, payload)
    return [dev, inc, seq, 1780000000 + seq, payload.hex(), tag.hex()]


def test_cross_depot_idempotency_key_neither_blocks_nor_replays(bo):
    store, srv = bo
    key = "depot-A:0badc0de:1"
    # depot B takes depot A's next key for its own batch (of its own validator)
    body, hd = _batch("depot-B", key, [_tap("val-b", 1)], DEPOT_B)
    assert _post(srv.url + "/v2/batches", body, hd)[0] == 200
    # depot A's batch under that key is not blocked (keys are per depot) nor answered
    # with B's answer
    body, hd = _batch("depot-A", key, [_tap("val-1", 1), _tap("val-1", 2)], DEPOT_A)
    code, ans = _post(srv.url + "/v2/batches", body, hd)
    assert (code, ans["new"], ans["duplicate_batch"]) == (200, 2, False)
    assert store.count() == 3
    # and B cannot speak as A: without A's key it is refused
    body, hd = _batch("depot-A", "depot-A:x:9", [_tap("val-1", 3)], DEPOT_B)
    assert _post(srv.url + "/v2/batches", body, hd) == (401, {"error": "bad_mac",
                                                              "detail": "depot-A"})


# --- 5. cross-depot forged records -------------------------------------------------------

def test_depot_cannot_forge_alter_or_report_for_another(bo):
    store, srv = bo
    url = srv.url + "/v2/batches"
    # depot B reports for val-1, registered to depot A: the whole batch is refused
    body, hd = _batch("depot-B", "depot-B:1:1", [_tap("val-b", 5), _tap("val-1", 1)], DEPOT_B)
    assert _post(url, body, hd)[1]["error"] == "unregistered_device"
    assert store.count() == 0 and any(a["kind"] == "unregistered" for a in store.alarms())
    # a compromised depot A alters a tap of its own validator (fare 1) and invents one:
    # neither carries the validator's tag, so neither is counted; both kept as evidence
    good = _tap("val-1", 1)
    altered = cbor2.loads(bytes.fromhex(good[4]))
    altered[9] = 1
    forged = _tap("val-1", 2, key=b"k" * 32)            # a tag under a key it made up
    alt = _tap("val-1", 1, payload=cbor2.dumps(altered), tag=bytes.fromhex(good[5]))
    body, hd = _batch("depot-A", "depot-A:1:1", [alt, forged], DEPOT_A)
    code, ans = _post(url, body, hd)
    assert (code, ans["new"], ans["forged"]) == (200, 0, 2)
    assert store.count() == 0 and store.settlement() == {}
    assert sorted(e[3] for e in store.evidence()) == ["bad_tag", "bad_tag"]
    # the genuine record, arriving later, is stored: the forgery did not take its place
    body, hd = _batch("depot-A", "depot-A:1:2", [good], DEPOT_A)
    assert _post(url, body, hd)[1]["new"] == 1
    # the validator itself writing two records under one key (both tagged): the first
    # stands, the second is kept as evidence with an alarm - never dropped
    other = _tap("val-1", 1, payload=cbor2.dumps({**altered, 9: 1000}))
    body, hd = _batch("depot-A", "depot-A:1:3", [other], DEPOT_A)
    assert _post(url, body, hd)[1]["conflicts"] == 1
    assert store.settlement()[b"W\x01".hex()]["rupiah"] == 3500
    kinds = [a["kind"] for a in store.alarms()]
    assert kinds.count("forged") == 2 and kinds.count("conflict") == 1
    page = _get(srv.url + "/")
    assert "forged" in page and "bad_tag" in page and "conflict" in page


def test_old_clients_get_a_clear_refusal(depot, bo):
    _store, srv = bo
    hello = json.dumps({"time": 1, "unsent": 0, "have": {}}).encode()
    code, ans = _post(depot.url + "/v1/sync/val-1/hello", hello,
                      {"X-BRT-MAC": synckeys.time_mac(SECRET, b"", 0)})
    assert (code, ans["error"]) == (426, "api_version") and "update" in ans["detail"]
    assert any(a["kind"] == "old_client" for a in depot.store.alarms())
    body, hd = _batch("depot-A", "k", [], DEPOT_A)
    assert _post(srv.url + "/v1/batches", body, hd)[0] == 426
    # a v2 path with a v1 hello body (no version, no nonce): refused the same way
    code, ans = _post(depot.url + "/v2/sync/val-1/hello", hello,
                      {"X-BRT-MAC": _mac(hello)})
    assert (code, ans["error"]) == (426, "api_version")


def _mac(body):
    import hmac
    return hmac.new(SYNC_KEY, body, hashlib.sha256).hexdigest()


# --- 6. the out-of-range config ----------------------------------------------------------

def test_out_of_range_config_refused_by_builder_depot_and_firmware(tmp_path, depot, capsys):
    with pytest.raises(hb.BundleError) as e:
        hb.config_body({"qr_window_s": 1000})
    assert e.value.reason == "bad_config"
    for bad in ({"passback_s": -1}, {"depot_url": "ftp://x"}, {"locked": False},
                {"wifi": {"ssid": "", "psk": ""}}):
        with pytest.raises(hb.BundleError):
            hb.config_body(bad)
    # signed by the operator all the same (built without the builder's check)
    raw = hb.sign_bundle(hb.CONFIG, 5, cbor2.dumps({"qr_window_s": 1000}), OPKEY)
    f = tmp_path / "bad.bun"
    f.write_bytes(raw)
    assert depot_main(["--db", str(tmp_path / "cli.db"), "bundle", str(f)]) == 1
    assert "qr_window_s must be 5..300" in capsys.readouterr().err
    # the firmware refuses to install it, reports it, and keeps syncing
    depot.store.add_bundle(hb.CONFIG, 5, raw)
    v = Validator(tmp_path, depot.url)
    try:
        v.gen(5)
        r = v.sync()
        assert [4, 5, "bad_config"] in r["errors"] and r["unsent"] == 0, r
        assert not (tmp_path / "data-val-1" / "config.bun").exists()
        assert depot.store.devices()[0]["refused"] == [(4, 5, "bad_config", 1)]
        v.gen(3, base=50)   # syncing goes on: the next session uploads, and does not
        r = v.sync()        # download the refused bundle again
        assert r["unsent"] == 0 and r["errors"] == [] and r["installed"] == []
        assert len(depot.store.taps("val-1")) == 8
    finally:
        v.close()


def test_installed_out_of_range_config_leaves_the_validator_running(tmp_path):
    """A config bundle installed before the ranges were checked (or by older firmware):
    boot leaves it out with a fault and runs - and syncs - on config.json."""
    from tests.support.mp import run_code
    data = tmp_path / "data"
    data.mkdir()
    cfg = {"v": 1, "device_id": "a1b2c3d4", "operator": "TSM", "operator_key": OPPUB.hex(),
           "wifi": {"ssid": "depot", "psk": "password1"}, "depot_url": "http://10.0.0.1:8080"}
    (data / "config.json").write_text(json.dumps(cfg))
    (data / "config.bun").write_bytes(hb.sign_bundle(hb.CONFIG, 2, cbor2.dumps(
        {"qr_window_s": 1000, "depot_url": "http://10.0.0.9:80"}), OPKEY))
    out = run_code("from app import state\n"
                   "c = state.load_config(%r)\n"
                   "print(c.qr_window_s, c.depot_url, c.bundle_error)" % str(data),
                   heap="256K")
    assert out.split()[:2] == ["30", "http://10.0.0.1:8080"], out
    assert "qr_window_s" in out and "5..300" in out


def test_config_bundle_with_a_wrong_depot_url_cannot_cut_the_bus_off(tmp_path, depot):
    """A bundle may change depot_url (within range): a wrong one (here a port nobody
    listens on) is tried LINK_TRIES times, then config.json's own link takes over."""
    with socket_closed_port() as dead:
        link = Link(tmp_path, depot.url, bundle_url="http://127.0.0.1:%d" % dead)
        try:
            link.ask({"op": "tap", "n": 2})
            st = link.run(15 * 60 * 1000, until="acked")
            assert st["unsent"] == 0 and len(depot.store.taps("val-1")) == 2, st
        finally:
            link.close()


class socket_closed_port:
    def __enter__(self):
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()          # nobody listens there: connections are refused
        return self.port

    def __exit__(self, *a):
        return False


# --- 7. the refused-bundle report --------------------------------------------------------

def test_refused_bundle_reported_across_sessions_until_replaced(tmp_path, depot):
    forged = hb.sign_bundle(hb.FARES, 4, hb.fares_body({0: 1}), hb.generate_key())
    depot.store.add_bundle(hb.FARES, 4, forged)
    v = Validator(tmp_path, depot.url)
    try:
        r = v.sync()
        assert [3, 4, "bad_signature"] in r["errors"]
        page = status_page(depot.server.app.status())
        assert "kind 3 v4: bad_signature" in page
        # later sessions (the validator reported nothing new) keep it on the page, and the
        # refused bundle is not downloaded again
        before = depot.server.app.counters.get("bundle_bytes", 0)
        for _ in range(2):
            r = v.sync()
            assert r["errors"] == [] and r["state"] == 6
        assert depot.server.app.counters.get("bundle_bytes", 0) == before
        assert "kind 3 v4: bad_signature" in status_page(depot.server.app.status())
        # a genuine newer fare table replaces it: installed, and the refusal is over
        depot.store.add_bundle(hb.FARES, 6, hb.sign_bundle(hb.FARES, 6, hb.fares_body(
            {0: 3500}), OPKEY))
        assert [3, 6] in v.sync()["installed"]
        v.sync()
        assert depot.store.devices()[0]["refused"] == []
    finally:
        v.close()


# --- 8. prompt sync while parked ---------------------------------------------------------

def test_prompt_sync_while_parked(tmp_path, depot):
    link = Link(tmp_path, depot.url)
    try:
        st = link.run(20000, until="done")
        assert st["state"] == "done" and st["sessions"] == 1, st
        # parked: a tap is uploaded within the answer's 3 s on the screen + UPLOAD_QUIET_MS +
        # CHECK_MS (5.5 s, docs/sync-api.md 'Prompt sync') - not 5 minutes later
        t = link.ask({"op": "tap", "n": 3})
        st = link.run(60000, until="acked")
        assert st["unsent"] == 0 and st["vt"] - t["vt"] <= 5500 + 100, (t, st)
        assert len(depot.store.taps("val-1")) == 3
        # a new deny list at the depot reaches the parked validator within POLL_MS (10 s)
        link.run(3000)
        raw = hb.sign_bundle(hb.DENY, 9, hb.deny_body([hb.deny_entry(b"W", b"stolen")]),
                             OPKEY)
        vt0 = link.ask({"op": "status"})["vt"]
        depot.store.add_bundle(hb.DENY, 9, raw)
        st = link.run(60000, until="installed")
        assert st["bundles"] == [2] and st["vt"] - vt0 <= 10000 + 100, st
        assert (tmp_path / "data-val-1" / "deny.bin").read_bytes() == raw
        # never during a tap: no session started on a turn with a rider at the reader
        for _ in range(5):
            link.ask({"op": "tap", "n": 1})
        st = link.run(20000, until="acked")
        assert st["started_busy"] == 0 and st["unsent"] == 0
    finally:
        link.close()
