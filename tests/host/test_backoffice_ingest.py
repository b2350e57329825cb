"""The back office's batch insert (multi-row INSERT on SQLite, COPY into a staging table on
PostgreSQL: host/backoffice/store.py `_insert_taps`) keeps the per-row rules: a key twice in
one batch is stored once (the first copy stands: a duplicate, or a conflict kept as
evidence), keys stored by an earlier batch are duplicates, and a large batch arrives whole."""

from tests.host.backoffice_pg import pg_cluster  # noqa: F401 - session fixture
from tests.host.test_backoffice_store import T, rec, store  # noqa: F401 - fixture


def test_a_key_twice_in_one_batch(store):  # noqa: F811 - the fixture
    first = rec(b"w1", b"p1")
    taps = T([("v1", 1, 1760000001, first), ("v2", 1, 1760000001, rec(b"w2", b"q1")),
              ("v1", 1, 1760000001, first), ("v1", 2, 1760000002, rec(b"w1", b"p2")),
              ("v1", 2, 1760000002, rec(b"w1", b"OTHER"))])
    out = store.ingest("depot-A", "depot-A:1", taps)
    assert (out["new"], out["duplicates"], out["conflicts"]) == (3, 1, 1)
    kept = store._all("SELECT proof FROM taps WHERE device_id='v1' AND seq=2")
    assert [bytes(r[0]) for r in kept] == [b"p2"]                  # the first copy stands
    assert [e[3] for e in store.evidence()] == ["conflict"]
    assert [a["kind"] for a in store.alarms()] == ["conflict"]


def test_a_large_batch_then_an_overlapping_one(store):  # noqa: F811
    a = T([("v1", s, 1760000000 + s, rec(b"w%d" % (s % 7), b"p%d" % s)) for s in range(1, 1201)])
    assert store.ingest("depot-A", "depot-A:1", a)["new"] == 1200
    b = a[1100:] + T([("v1", s, 1760000000 + s, rec(b"w1", b"p%d" % s)) for s in range(1201, 1301)])
    out = store.ingest("depot-A", "depot-A:2", b)
    assert (out["new"], out["duplicates"], out["conflicts"]) == (100, 100, 0)
    assert store.count() == 1300
    assert store.gaps() == []
    assert sum(v["rupiah"] for v in store.settlement().values()) == 1300 * 3500
