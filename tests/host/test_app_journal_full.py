"""A full journal (DESIGN §5, issue 4 'when it is full'): the validator refuses new taps
with JOURNAL_FULL ("go to depot"), charges nothing, drops no unsent tap, shows the fault at
boot, and takes taps again once the depot acknowledged records."""

import pytest

from sim.world import World
from tests.host.app_support import ACC, NOW, REJ, Board

SMALL = {"flash_size": 576 * 1024, "vfs_size": 512 * 1024}   # a 64 KiB journal


@pytest.fixture()
def board(tmp_path):
    b = Board(tmp_path, World.load_or_create(tmp_path / "world"))
    st = b.boot(**SMALL)
    assert st["faults"] == [], st
    yield b
    b.close()


def test_full_journal_refuses_without_charging_then_recovers_after_ack(board):
    w = board.world
    t = NOW
    filled = board.ask(op="fill", now=t)
    assert filled["full"] and filled["appended"] > 100, filled
    text = w.qr("regular", t)
    d = board.qr(text, t)
    assert (d["answer"], d["reason"], d["fare"]) == (REJ, 46, 0), d
    assert d["journal_full"] and d["seq"] is None
    # after a reboot the validator says so at once
    st = board.boot(**SMALL)
    assert "journal_full" in st["faults"], st
    # the depot takes the records (and acknowledges them): space comes back, nothing lost
    recs = board.records(ack=True)
    assert len(recs) == filled["appended"]
    # the same code, still fresh, is accepted now: the refused tap left no mark
    d = board.qr(text, t + 5)
    assert (d["answer"], d["reason"], d["fare"]) == (ACC, 0, 3500), d
    assert d["seq"] == filled["appended"] + 1
