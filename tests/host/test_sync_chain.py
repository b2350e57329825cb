"""The whole chain: validators (MicroPython) -> depot (loopback HTTP) -> back office, with the
back office down for a simulated week while taps pile up, then draining; and deny-list
deltas from the back office merged by the depot and installed on the validator."""

import time

import pytest

from host import bundles as hb
from host.backoffice.server import BackofficeServer
from host.backoffice.store import open_store
from host.depot.outbox import BACKOFF_MAX_S, Uplink
from host.depot.server import status_page
from tests.host.backoffice_pg import pg_cluster  # noqa: F401 - session fixture
from tests.host.sync_support import OPKEY, OPPUB, SECRET, Depot, Validator, gen_rec

DEPOT_SECRET = b"depot-secret-for-the-uplink-0001"
HOUR = 3600.0


class FakeClock:
    def __init__(self, t):
        self.t = t

    def __call__(self):
        return self.t


@pytest.fixture(params=["sqlite", "postgresql"])
def chain(request, tmp_path):
    clock = FakeClock(time.time())  # simulated time runs ahead of the real clock
    depot = Depot(tmp_path / "depot.db")
    depot.store.set_meta("depot_id", "depot-A")
    if request.param == "sqlite":
        bo = open_store(tmp_path / "bo.db")
    else:
        bo = open_store(request.getfixturevalue("pg_cluster").new_database())
    bo.register_depot("depot-A", DEPOT_SECRET)
    bo_srv = BackofficeServer(bo).start()
    up = Uplink(depot.store, bo_srv.url, DEPOT_SECRET, operator_key=OPKEY, clock=clock,
                batch_taps=200)
    vals = []
    for i in (1, 2):
        depot.store.register("val-%d" % i, SECRET)
        bo.register_validator("val-%d" % i, ["depot-A"], secret=SECRET)
        vals.append(Validator(tmp_path, depot.url, device="val-%d" % i))
    yield clock, depot, bo, bo_srv, up, vals
    for v in vals:
        v.close()
    bo_srv.stop()
    bo.close()
    depot.stop()


def accepted(base, n, first_seq):
    return {first_seq + i for i in range(n) if gen_rec(i, base)[4] == 0}


def test_backoffice_down_for_a_week_then_drains(chain):
    clock, depot, bo, bo_srv, up, vals = chain
    bo_srv.down.set()
    want = set()
    seqs = {v: 0 for v in vals}
    for day in range(7):
        for k, v in enumerate(vals):
            base = (day * 2 + k) * 1000
            v.gen(150, base=base)
            want |= {(v.args["device"], s) for s in accepted(base, 150, seqs[v] + 1)}
            seqs[v] += 150
            r = v.sync()
            assert r["state"] == 6 and r["unsent"] == 0, r
        for _hour in range(24):  # the uplink keeps trying every hour, always refused
            clock.t += HOUR
            assert up.run_once() == 0
    st = depot.store.outbox_status()
    assert st["delivered_batches"] == 0 and st["pending_taps"] == 7 * 2 * 150
    assert st["max_attempts"] >= 7  # retried, with backoff capped at an hour
    assert up.last_error is not None
    assert "pending: %d batches" % st["pending_batches"] in status_page(
        depot.server.app.status())
    assert bo.count() == 0
    # the link comes back: everything drains, exactly once
    bo_srv.down.clear()
    clock.t += BACKOFF_MAX_S * 1.3
    while up.run_once():
        pass
    st = depot.store.outbox_status()
    assert st["pending_batches"] == 0 and st["delivered_taps"] == 2100
    assert bo.count() == 2100
    assert bo.tap_keys(accepted_only=True) == want
    # a delivered batch sent again (say its answer was lost) changes nothing
    depot.store._db().execute("UPDATE outbox SET delivered_at=NULL, next_try=0 WHERE id=1")
    assert up.send_one(clock.t) == "sent"  # the same key and body: the first answer
    assert bo.count() == 2100 and bo.alarms() == []


def test_deny_delta_reaches_the_validator(chain, tmp_path):
    clock, depot, bo, bo_srv, up, vals = chain
    v1, v2 = vals
    # the same proof accepted on two validators (a copied token): the wallet gets denied
    rec = gen_rec(3)
    v1.tap([rec])
    v2.tap([rec])
    for v in vals:
        assert v.sync()["unsent"] == 0
    assert up.run_once() >= 1
    assert bo.proofs_used_twice()[0][0] == rec[2]
    assert bo.publish(OPKEY) == 1
    assert up.pull_deny(OPPUB) == 1
    r = v1.sync()
    assert [2, 1] in r["installed"], r
    raw = (tmp_path / "data-val-1" / "deny.bin").read_bytes()
    b = hb.parse_bundle(raw, OPPUB, expect_kind=hb.DENY)
    assert hb.deny_entry(b"W", bytes.fromhex(rec[0])) in hb.parse_deny(b.body)


def test_forged_deny_delta_is_refused_by_the_depot(chain):
    clock, depot, bo, bo_srv, up, vals = chain
    bo.publish(OPKEY, extra=[(b"W", b"stolen-phone", "reported")])  # version 1, genuine
    forged = hb.sign_bundle(hb.DENY_DELTA, 2, hb.delta_body(1, add=[b"\x00" * 8]),
                            hb.generate_key())
    bo._tx(lambda db: bo._x(db, "INSERT INTO deltas(version, data) VALUES (?, ?)",
                            (2, forged)))
    assert up.pull_deny(OPPUB) == 1  # the genuine delta merged, the forged one refused
    assert "bad_signature" in up.last_error
    assert depot.store.latest_bundles()[hb.DENY][0] == 1
    full = hb.parse_bundle(depot.store.bundle(hb.DENY, 1), OPPUB)
    assert hb.parse_deny(full.body) == [hb.deny_entry(b"W", b"stolen-phone")]
    assert up.pull_deny(OPPUB) is None  # still refused next time, version unchanged


def test_lost_backoffice_answer_is_retried_and_counted_once(chain):
    clock, depot, bo, bo_srv, up, vals = chain
    v = vals[0]
    v.gen(300)
    assert v.sync()["unsent"] == 0
    bo_srv.drop_answers.set()  # the back office commits each batch, the answer is lost
    assert up.run_once() == 0
    assert depot.store.outbox_status()["pending_batches"] == 2 and bo.count() == 200
    bo_srv.drop_answers.clear()
    clock.t += BACKOFF_MAX_S * 1.3
    assert up.run_once() == 2
    assert bo.count() == 300  # the re-sent first batch was recognised by its key
    assert depot.store.outbox_status()["delivered_taps"] == 300


def test_validators_sync_concurrently(chain, tmp_path):
    import threading
    clock, depot, bo, bo_srv, up, vals = chain
    more = []
    for i in (3, 4):
        depot.store.register("val-%d" % i, SECRET)
        bo.register_validator("val-%d" % i, ["depot-A"], secret=SECRET)
        more.append(Validator(tmp_path, depot.url, device="val-%d" % i))
    try:
        allv = vals + more
        for k, v in enumerate(allv):
            v.gen(200, base=k * 1000)
        results = {}

        def run(v):
            results[v.args["device"]] = v.sync()
        threads = [threading.Thread(target=run, args=(v,)) for v in allv]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        for dev, r in results.items():
            assert r["state"] == 6 and r["unsent"] == 0, (dev, r)
            assert [s for _d, s, _t, _p in depot.store.taps(dev)] == list(range(1, 201))
        assert len(results) == 4 and depot.store.gaps() == []
    finally:
        for v in more:
            v.close()
