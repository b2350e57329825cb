"""A small fleet day (sim/fleet.py): 15 buses (one per route), every tap through the real
decision core under MicroPython, the depots and the back office over real HTTP, then the
reconciliation and the operator's dashboard in a real headless browser (Debian's chromium;
.ci/run installs it). `make fleet-day` runs the 10 % sample, `--full` the whole fleet.
"""

import base64
import copy
import json
import pathlib
import re
import shutil
import subprocess
import urllib.error
import urllib.request

import pytest

from sim import fleet as simfleet
from sim import fleet_model as fm
from sim import fleet_recon
from tests.host.backoffice_pg import pg_cluster  # noqa: F401 - session fixture

ROOT = pathlib.Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "build" / "test-artifacts"
SMALL = 0.04      # every 25th bus of each route: one bus per route, 15 buses


@pytest.fixture(scope="module")
def day(tmp_path_factory):
    f = simfleet.Fleet(fm.Plan(7, SMALL), tmp_path_factory.mktemp("fleet"), jobs=2,
                       log=lambda s: None)
    try:
        f.run()
        yield f, fleet_recon.reconcile(f)
    finally:
        f.close()


def test_plan_is_deterministic_and_shaped_like_the_city():
    a, b = fm.Plan(3, 1.0), fm.Plan(3, 1.0)
    assert [(x.id, [(t.t, t.wallet, t.channel) for t in x.trips]) for x in a.buses] == \
        [(x.id, [(t.t, t.wallet, t.channel) for t in x.trips]) for x in b.buses]
    s = a.summary()
    assert s["fleet"] == s["buses"] == 270 and s["routes"] == 15
    assert 19_000 <= s["noncash_trips"] <= 20_000     # 60 % of 33,000 (+ planted rides)
    hours = [0] * 24
    for x in a.buses:
        for t in x.trips:
            hours[fm.hour_of(t.t)] += 1
    # two peaks: 6-8 and 16-18 busier than the midday lull
    assert min(hours[7], hours[17]) > 2 * hours[12]
    assert fm.Plan(3, 0.1).summary()["buses"] < 40


def test_every_tap_and_rupiah_reconciles(day):
    f, rec = day
    assert rec["ok"], json.dumps({k: v for k, v in rec.items() if k != "buses"})[:2000]
    assert rec["lost"] == 0 and rec["doubled"] == 0
    assert rec["decided"] == rec["in_backoffice"] > 500
    assert rec["rupiah_charged"] == rec["rupiah_settled"] > 0
    assert rec["anomalies_found"] == rec["anomalies_planted"] == 4
    # every bus and corridor alike, and the incidents really happened
    assert all(b["decided"] == b["in_backoffice"] for b in rec["buses"])
    assert {c["corridor"] for c in rec["corridors"]} == set(fm.CORRIDORS) | {"feeder"}
    assert sum(b["cuts"] for b in rec["buses"]) >= 1
    missed = [b for b in rec["buses"] if b["bus"] in rec["plan"]["missed_depot"]]
    assert missed and all(s["round"] == "late" for b in missed for s in b["syncs"])
    # the revoked wallet: refused where the bus had learned it, accepted where not yet
    rv = rec["anomalies"]["revoked_attempts"]
    assert rv["refused_denied"] >= 1 and rv["accepted_before_bus_learned"] >= 1
    assert rec["revocation"]["learned"] == len(rec["buses"])
    assert rec["revocation"]["last_same_day_s"] > 11 * 3600   # the depot whose uplink was down
    # the back office denied what it found (the clone's wallet, the greedy pass)
    assert f.settled is not None


def test_reconciliation_fails_on_a_lost_or_doubled_tap(day):
    f, _rec = day
    bus = f.plan.buses[0].id
    saved = copy.deepcopy(f.tally[bus])
    try:
        f.tally[bus]["seqs"].append(10 ** 6)     # a tap the back office never got
        f.tally[bus]["n"] += 1
        rec = fleet_recon.reconcile(f)
        assert not rec["ok"] and rec["lost"] == 1
        f.tally[bus] = copy.deepcopy(saved)
        f.tally[bus]["seqs"].pop()                # a record the bus did not decide
        f.tally[bus]["n"] -= 1
        rec = fleet_recon.reconcile(f)
        assert not rec["ok"] and rec["doubled"] == 1
    finally:
        f.tally[bus] = saved
    assert fleet_recon.reconcile(f)["ok"]


def _chromium():
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    assert exe, "the dashboard test needs Debian's chromium (apt-get install -y chromium)"
    return exe


def _browser(url, *args):
    r = subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                        "--disable-dev-shm-usage", "--hide-scrollbars"] + list(args) + [url],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


def test_dashboard_in_a_real_browser(day):
    f, rec = day
    url = f.bo.url + "/dashboard"
    # closed to anyone without the operator credential
    for auth in (None, "Basic " + base64.b64encode(b"operator:wrong").decode(), "Bearer x"):
        req = urllib.request.Request(url, headers={"Authorization": auth} if auth else {})
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=10)
        assert e.value.code == 401
    authed = url.replace("http://", "http://operator:%s@" % f.bo.operator_token)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "dashboard.png"
    shot.unlink(missing_ok=True)
    _browser(authed, "--window-size=1280,2200", "--screenshot=%s" % shot)
    assert shot.stat().st_size > 20_000
    for size in ("1280,900", "390,844"):       # a laptop and a phone
        dom = _browser(authed, "--window-size=" + size, "--dump-dom",
                       "--virtual-time-budget=5000")
        (ARTIFACTS / ("dashboard-%s.html" % size.split(",")[0])).write_text(dom)
        figs = {k: int(v) for k, v in re.findall(r"id=\"fig-(\w+)\" data-v=\"(\d+)\"", dom)}
        # what the page says is what the reconciliation found
        assert figs["taps"] == rec["decided"]
        assert figs["revenue"] == rec["rupiah_settled"] == rec["rupiah_charged"]
        assert figs["devices"] == len(rec["buses"])
        assert figs["gaps"] == len(rec["gaps"]) == 0
        assert figs["pending"] == 0
        assert figs["fraud"] == 2       # the clone's proof used twice, the greedy pass
        # the browser laid the charts out and drew their bars
        drawn = dict(re.findall(r"id=\"chart-(\w+)\" data-drawn=\"(\d+)\"", dom))
        assert int(drawn["hourly"]) >= 15 and int(drawn["revenue"]) == len(rec["corridors"])
        assert 'data-overflow="no"' in dom
        for c in rec["corridors"]:
            assert ">%s<" % c["corridor"] in dom


def test_fleet_day_on_postgresql(pg_cluster, tmp_path):  # noqa: F811 - the fixture
    f = simfleet.Fleet(fm.Plan(11, SMALL), tmp_path / "pg", store_url=pg_cluster.new_database(),
                       jobs=2, log=lambda s: None)
    try:
        f.run()
        rec = fleet_recon.reconcile(f)
    finally:
        f.close()
    assert rec["ok"] and rec["lost"] == 0 and rec["doubled"] == 0
    assert rec["anomalies_found"] == 4
