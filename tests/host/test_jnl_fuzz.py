"""Generated operation sequences against the real journal under MicroPython, checked
against a plain model on the host: appends, acks, maintain, reboots, power cuts at random
operations and raw corruption of the flash. The journal must never lose a returned
unacked tap, never invent one, never reuse a seq, never bring back an acked tap, and never
let anything but a JournalError escape."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.mp import MPWorker, ROOT

T = 1750000000


def payload(i, n):
    return bytes([(i * 31 + k * 7 + 1) & 0xFF for k in range(n)])


@pytest.fixture(scope="module")
def worker():
    w = MPWorker(ROOT / "tests" / "host" / "jnl_worker_mp.py", heap="512K",
                 paths=["sim/vboard"])
    yield w
    w.close()


def ask(worker, req):
    out = json.loads(worker.ask(json.dumps(req)))
    assert "escaped" not in out, out
    assert "journal_error" not in out, out
    return out["res"]


op = st.one_of(
    st.tuples(st.just("a"), st.integers(1, 240)),
    st.tuples(st.just("a"), st.integers(40, 80)),
    st.tuples(st.just("k"), st.integers(0, 30)),
    st.tuples(st.just("m")),
    st.tuples(st.just("r")),
    st.tuples(st.just("u")),
    st.tuples(st.just("s"), st.integers(1, 400)),
    st.tuples(st.just("c"), st.integers(0, 3), st.integers(1, 10 ** 6), st.integers(1, 240)),
)


class Model:
    def __init__(self):
        self.recs = {}        # seq -> (i, n) of returned appends
        self.sizes = {}       # i -> n
        self.acked = 0
        self.last = 0         # largest seq known to exist (returned or survived a cut)

    def unsent(self):
        return [(s, self.recs[s]) for s in sorted(self.recs) if s > self.acked]


def check_unsent(m, got):
    want = m.unsent()
    assert [g[0] for g in got] == [s for s, _ in want], (got, want)
    for (_seq, t, hx), (_s, (i, n)) in zip(got, want):
        assert t == T + i and bytes.fromhex(hx) == payload(i, n)


def check_since(m, first, got, first_seq):
    # a consecutive run of genuine records ending at the last one; it covers every
    # unacked record >= first and every record from max(first, first_seq) on
    seqs = [g[0] for g in got]
    if m.last < first:
        assert seqs == []
        return
    assert seqs and seqs[-1] == m.last and seqs == list(range(seqs[0], m.last + 1))
    assert first <= seqs[0] <= max(first, first_seq)
    for q, t, hx in got:
        i, n = m.recs[q]
        assert t == T + i and bytes.fromhex(hx) == payload(i, n)


def play(worker, sectors, ops):
    res = ask(worker, {"sectors": sectors, "ops": [list(o) for o in ops]})
    m = Model()
    assert res[0][:3] == [0, 0, 0]
    i = 0
    for o, r in zip(ops, res[1:]):
        k = o[0]
        if k == "a":
            if r != "full":
                seq, i = r
                assert seq == m.last + 1, "seq %d after %d" % (seq, m.last)
                m.recs[seq] = (i, o[1])
                m.last = seq
        elif k == "k":
            assert r >= m.acked
            m.acked = r
        elif k == "r" or k == "z":
            unsent, last, acked, lost, _full = r
            assert lost == 0 and acked == m.acked and last == m.last
            assert unsent == len(m.unsent())
        elif k == "c":
            outcome, (unsent, last, acked, lost, _full), i = r
            assert lost == 0 and acked == m.acked
            if outcome not in ("cut", "full"):          # the append returned
                seq, i = outcome
                assert seq == m.last + 1
                m.recs[seq] = (i, o[3])
                m.last = seq
            elif outcome == "cut" and last == m.last + 1:  # in flight, and it survived
                m.recs[last] = (i, o[3])
                m.last = last
            assert last == m.last, "phantom or lost record after a cut"
            assert unsent == len(m.unsent())
        elif k == "u":
            check_unsent(m, r)
        elif k == "s":
            check_since(m, o[1], r[:-1], r[-1])
    return m


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sectors=st.integers(5, 9), ops=st.lists(op, min_size=1, max_size=120))
def test_generated_sequences_match_the_model(worker, sectors, ops):
    play(worker, sectors, list(ops) + [("r",), ("u",)])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(30, 150), addr=st.integers(0, 8 * 4096 - 1),
       junk=st.binary(min_size=1, max_size=64))
def test_corrupted_flash_never_yields_a_phantom_or_crashes(worker, n, addr, junk):
    ops = [("a", 60)] * n + [("k", n // 2), ("z", addr, junk.hex()), ("u",)]
    res = ask(worker, {"sectors": 8, "ops": [list(o) for o in ops]})
    unsent = res[-1]
    seqs = [u[0] for u in unsent]
    assert seqs == sorted(set(seqs)), "duplicate or unordered seqs after corruption"
    for s, t, hx in unsent:
        i = t - T
        assert 0 <= i < n and s == i + 1 and bytes.fromhex(hx) == payload(i, 60), \
            "record %d after corruption is not one that was appended" % s


def test_full_then_ack_then_more(worker):
    # deterministic: fill a 3-data-sector journal, check refusals, drain, continue
    ops = [("a", 60)] * 200 + [("u",), ("k", 0), ("a", 60), ("r",), ("u",)]
    m = play(worker, 5, ops)
    assert m.acked == 165 and m.last == 166 and len(m.unsent()) == 1
