"""Property: over random interleavings of taps (also during a sync), uploads, cuts in either
direction, validator reboots, depot restarts, and back-office outages, the back office's
set of taps equals the set of taps the validator answered OK — none lost, none twice."""

import itertools
import os
import time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from host.backoffice.server import BackofficeServer
from host.backoffice.store import open_store
from host.depot.outbox import BACKOFF_MAX_S, Uplink
from tests.host.sync_support import SECRET, CutProxy, Depot, Validator, gen_rec

DEPOT_SECRET = b"depot-secret-for-the-uplink-0002"
_ids = itertools.count(1)


class Env:
    def __init__(self, tmp):
        self.tmp = tmp
        self.now = time.time()
        self.depot = Depot(tmp / "depot.db")
        self.depot.store.set_meta("depot_id", "depot-P")
        self.proxy = CutProxy(self.depot.server.port)
        self.bo = open_store(tmp / "bo.db")
        self.bo.register_depot("depot-P", DEPOT_SECRET)
        self.bo_srv = BackofficeServer(self.bo).start()
        self.up = Uplink(self.depot.store, self.bo_srv.url, DEPOT_SECRET,
                         clock=lambda: self.now, batch_taps=40)

    def close(self):
        self.proxy.close()
        self.bo_srv.stop()
        self.depot.stop()


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    e = Env(tmp_path_factory.mktemp("sync-prop"))
    yield e
    e.close()


cut = st.one_of(st.none(), st.tuples(st.sampled_from(["up", "down"]), st.integers(1, 900)))
ops = st.one_of(
    st.tuples(st.just("tap"), st.integers(1, 40)),
    st.tuples(st.just("sync"), st.lists(cut, max_size=3), st.integers(0, 4),
              st.sampled_from([150, 400, 5000])),
    st.tuples(st.just("reboot")),
    st.tuples(st.just("uplink"), st.booleans()),
    st.tuples(st.just("depot_restart")),
)


# make test runs 25 examples; `make sync-property` runs 300
EXAMPLES = int(os.environ.get("BRT_SYNC_PROP_EXAMPLES", "25"))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ops, min_size=1, max_size=7))
def test_backoffice_set_equals_answered_ok(env, script):
    dev = "prop-%d" % next(_ids)
    env.depot.store.register(dev, SECRET)
    env.bo.register_validator(dev, ["depot-P"], secret=SECRET)
    v = Validator(env.tmp, env.proxy.url, device=dev, batch=7)
    answered = {}  # seq -> accepted?
    base = 0
    try:
        for op in script:
            if op[0] == "tap":
                last = v.gen(op[1], base=base)
                for i in range(op[1]):
                    answered[last - op[1] + 1 + i] = gen_rec(i, base)[4] == 0
                base += op[1]
            elif op[0] == "sync":
                env.proxy.plan = list(op[1])
                during = [gen_rec(i, base) for i in range(op[2])]
                r = v.sync(during=during, tap_every=3, max_ms=op[3])
                for i, seq in enumerate(r["taps"]):
                    answered[seq] = during[i][4] == 0
                base += op[2]
                env.proxy.plan = []
            elif op[0] == "reboot":
                v.start()
            elif op[0] == "uplink":
                env.bo_srv.down.clear() if op[1] else env.bo_srv.down.set()
                env.now += 600
                env.up.run_once()
            else:
                env.depot.restart()
                env.up.store = env.depot.store
        # then the validator gets a clean sync and the uplink a working link
        env.bo_srv.down.clear()
        r = v.sync()
        assert r["state"] == 6 and r["unsent"] == 0, r
        env.now += BACKOFF_MAX_S * 1.3
        while env.up.run_once():
            pass
        stored = [s for _d, s, _t, _p in env.depot.store.taps(dev)]
        assert stored == sorted(answered)  # every answered tap at the depot, once
        got = {s for d, s in env.bo.tap_keys(accepted_only=True) if d == dev}
        assert got == {s for s, ok in answered.items() if ok}
        assert len({s for d, s in env.bo.tap_keys(accepted_only=False) if d == dev}) == \
            len(answered)
        # nothing the validator tagged was taken for a forgery or a conflict
        assert env.bo.evidence() == [] and env.bo.alarms() == []
    finally:
        env.proxy.plan = []
        v.close()
