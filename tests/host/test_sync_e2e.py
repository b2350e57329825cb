"""The validator's sync client under MicroPython against the depot on real loopback HTTP,
with faults: cuts in both directions, the same batch twice, batches out of order, a depot
restart mid-upload, a bad MAC, forged/stale/truncated bundles. Each time: no tap lost,
none stored twice, and the validator keeps answering taps while it syncs."""

import json
import time
import threading
import urllib.error
import urllib.request

import pytest

from host import bundles as hb
from host.depot import wire
from host import synckeys
from tests.host.sync_support import (OPKEY, SECRET, SYNC_KEY, CutProxy, Depot, Validator,
                                     gen_rec, tagged)


@pytest.fixture
def depot(tmp_path):
    d = Depot(tmp_path / "depot.db")
    d.store.register("val-1", SECRET)
    yield d
    d.stop()


@pytest.fixture
def proxy(depot):
    p = CutProxy(depot.server.port)
    yield p
    p.close()


@pytest.fixture
def val(tmp_path, proxy):
    v = Validator(tmp_path, proxy.url)
    yield v
    v.close()


def stored(depot, dev="val-1"):
    return [s for _d, s, _t, _p in depot.store.taps(dev)]


def test_sync_uploads_everything_once_sets_clock_and_keeps_answering(depot, val):
    val.gen(100)
    during = [gen_rec(i, 1000) for i in range(12)]
    r = val.sync(during=during, tap_every=5)
    assert r["state"] == 6 and r["last_error"] is None, r
    assert r["unsent"] == 0 and r["acked"] == 112
    # taps answered while syncing got the next sequence numbers and were uploaded too
    assert r["taps"] == list(range(101, 113))
    assert stored(depot) == list(range(1, 113))
    assert depot.store.gaps() == []
    assert depot.store.devices()[0]["unsent_on_device"] == 100  # reported at hello
    # the clock callback got the depot's time
    assert abs(r["times"][0] - depot.server.app.clock()) < 5
    # bounded steps (a socket op + one chunk each): the session really was spread over
    # many small steps, with taps answered between them. Step *times* are figures, not
    # assertions (a shared machine adds noise): `make bench`, sync group.
    assert r["steps"] > 100
    payloads = {s: p for _d, s, _t, p in depot.store.taps("val-1")}
    from host.backoffice.store import parse_record
    rec = parse_record(payloads[5])
    assert rec["proof"] == bytes.fromhex(gen_rec(4)[2]) and rec["fare"] == 3500


@pytest.mark.parametrize("direction,nbytes", [("up", 150), ("up", 700), ("down", 40),
                                              ("down", 130)])
def test_connection_cut_mid_exchange(depot, proxy, val, direction, nbytes):
    val.gen(70)
    # cut the 2nd and 3rd connections (the first batch uploads, then two cuts in a row)
    proxy.plan = [None, (direction, nbytes), (direction, nbytes)]
    r = val.sync()
    assert r["state"] == 6 and r["unsent"] == 0, r
    assert r["cycles"] >= 1 and proxy.cuts >= 1
    assert stored(depot) == list(range(1, 71))
    c = depot.server.app.counters
    if direction == "down" and nbytes > 100:  # cut after the depot committed: re-sent
        assert c.get("taps_dup", 0) > 0


def test_same_batch_twice_and_out_of_order(depot):
    recs = tagged("val-1", 7, [(s, 1760000000 + s, bytes([0xA1, 0x01, s])) for s in range(1, 21)])
    b1 = wire.encode_batch("val-1", 7, 1760000000, recs[:10])
    b2 = wire.encode_batch("val-1", 7, 1760000000, recs[10:])

    def post(body, mac=None):
        mac = mac or wire.mac(SYNC_KEY, body)
        req = urllib.request.Request(depot.url + "/v2/sync/val-1/batch", data=body,
                                     method="POST", headers={"X-BRT-MAC": mac})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                ans = json.loads(r.read())
                # the acknowledgement is MAC'd over this very batch's MAC
                assert ans.pop("ack_mac") == synckeys.ack_mac(SYNC_KEY, bytes.fromhex(mac),
                                                              ans["acked"])
                return r.status, ans
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    code, ans = post(b2)
    # the depot's time rides along with every answer (the validator sets it only from a hello)
    assert abs(ans.pop("time") - time.time()) < 5
    assert (code, ans) == (200, {"acked": 20, "stored": 10, "duplicates": 0, "conflicts": 0})
    assert depot.store.gaps() == []  # nothing below 11 yet: no hole between stored seqs
    code, ans = post(b1)
    assert (code, ans["acked"], ans["stored"]) == (200, 10, 10)
    code, ans = post(b1)
    assert (code, ans["stored"], ans["duplicates"]) == (200, 0, 10)
    assert stored(depot) == list(range(1, 21))
    # a hole shows up as a gap until it is filled
    b3 = wire.encode_batch("val-1", 7, 0, tagged("val-1", 7, [(25, 1, b"\xa0")]))
    assert post(b3)[0] == 200
    assert depot.store.gaps() == [("val-1", 21, 24)]
    # bad MAC: refused, nothing stored
    b4 = wire.encode_batch("val-1", 7, 0, tagged("val-1", 7, [(26, 1, b"\xa0")]))
    assert post(b4, mac="0" * 64) == (401, {"error": "bad_mac", "detail": "val-1"})
    assert 26 not in stored(depot)
    # malformed bodies: typed answers
    assert post(b"BRTU\x02")[1]["error"] == "malformed"
    assert post(b4[:-1])[1]["error"] == "malformed"
    # a format-1 body (an old validator): a clear refusal
    assert post(b"BRTU\x01" + b4[5:])[1]["error"] == "api_version"


def test_bad_device_secret_uploads_nothing_and_acks_nothing(depot, tmp_path):
    v = Validator(tmp_path, depot.url, secret=b"x" * 32)
    try:
        v.gen(10)
        r = v.sync(stop_on_fail=True)
        assert r["state"] == 5 and r["last_error"].startswith("http_401"), r
        assert r["unsent"] == 10 and r["acked"] == -1
        assert stored(depot) == []
        assert depot.server.app.counters["error_bad_mac"] >= 1
    finally:
        v.close()


def test_depot_restart_mid_upload(depot, proxy, val):
    val.gen(120)
    calls = []
    stopper = []

    def crash(dev):
        calls.append(dev)
        if len(calls) == 2:  # the second batch is committed, then the depot goes down
            stopper.append(threading.Thread(target=depot.server.stop))
            stopper[0].start()
            raise ConnectionError("depot process killed")
    depot.server.app.faults["after_commit"] = crash
    r = val.sync(stop_on_fail=True)  # runs into the dead depot, backs off
    assert r["state"] == 5 and r["unsent"] == 120 - 24, r  # first batch acked only
    assert stored(depot) == list(range(1, 49))  # the second was stored, never acked
    stopper[0].join(10)
    depot.restart()  # same port, store reopened from disk
    r = val.sync()
    assert r["state"] == 6 and r["unsent"] == 0, r
    assert stored(depot) == list(range(1, 121))


def test_validator_reboot_mid_sync_resumes(depot, proxy, val):
    val.gen(80)
    proxy.plan = [None, None, ("down", 130)]
    val.sync(max_ms=300)
    val.start()  # the validator reboots: journal recovered from flash
    r = val.sync()
    assert r["state"] == 6 and r["unsent"] == 0
    assert stored(depot) == list(range(1, 81))


def _bundle_setup(depot, val):
    fares = hb.sign_bundle(hb.FARES, 3, hb.fares_body({0: 3500, 1: 1000}), OPKEY)
    deny = hb.sign_bundle(hb.DENY, 2, hb.deny_body(
        [hb.deny_entry(b"W", b"w%d" % i) for i in range(600)]), OPKEY)
    depot.store.add_bundle(hb.FARES, 3, fares)
    depot.store.add_bundle(hb.DENY, 2, deny)
    return fares, deny


def test_bundles_installed_and_forged_stale_truncated_refused(depot, proxy, val, tmp_path):
    fares, deny = _bundle_setup(depot, val)
    proxy.plan = [None, ("down", 2500)]  # hello, then the deny list is cut mid-body
    r = val.sync()
    assert r["state"] == 6, r
    assert proxy.cuts == 1 and r["cycles"] == 1
    # the second attempt resumed with Range: less than two whole deny lists were served
    assert depot.server.app.counters["bundle_bytes"] < 2 * len(deny) + len(fares)
    assert sorted(map(tuple, r["installed"])) == [(2, 2), (3, 3)]
    data = tmp_path / ("data-val-1")
    assert (data / "deny.bin").read_bytes() == deny  # resumed with Range after the cut
    assert (data / "fares.cose").read_bytes() == fares
    # forged: a fare table signed by another key
    forged = hb.sign_bundle(hb.FARES, 4, hb.fares_body({0: 1}), hb.generate_key())
    depot.store.add_bundle(hb.FARES, 4, forged)
    # stale: offered as version 5 but the signed header says 2 (older than installed 3)
    depot.store.add_bundle(hb.FARES, 5, hb.sign_bundle(hb.FARES, 2, b"\xa0", OPKEY))
    r = val.sync()
    assert [3, 5, "stale"] in r["errors"], r
    depot.store._db().execute("DELETE FROM bundles WHERE kind=3 AND version=5")
    r = val.sync()
    assert [3, 4, "bad_signature"] in r["errors"], r
    # truncated: the depot serves a bundle cut short (Content-Length matches the bytes)
    depot.store.add_bundle(hb.CONFIG, 7, hb.sign_bundle(hb.CONFIG, 7, hb.config_body(
        {"passback_s": 90}), OPKEY)[:-10])
    depot.store._db().execute("DELETE FROM bundles WHERE kind=3 AND version=4")
    r = val.sync()
    assert [4, 7, "truncated"] in r["errors"], r
    # reported before the session ended: the depot shows every refusal, by version
    refused = depot.store.devices()[0]["refused"]
    assert (4, 7, "truncated", 1) in refused and (3, 4, "bad_signature", 1) in refused
    assert (3, 5, "stale", 1) in refused
    assert "4:truncated" in depot.store.devices()[0]["last_error"]
    assert (data / "fares.cose").read_bytes() == fares
    assert not (data / "config.bun").exists()
    assert sorted(p.name for p in data.iterdir()) == ["deny.bin", "fares.cose"]
