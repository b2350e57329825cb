# The tap loop collects between taps (issue 14 item 5, firmware/app/loop.py): after each
# answer, so the next decision starts on a collected heap. Checked with the same detector
# as tests/host/app_soak_mp.py: a collection frees blocks without m_free(), so the blocks
# in use (gc.mem_alloc) fall below what the runtime's m_malloc/m_free count
# (micropython.mem_current) says is held.
# mp-heapsize: 512K  because app.loop imports the drivers, screen and token code compiled
#   from source here (the board loads them as .mpy); the collection itself is the point
import gc

import micropython

from app import record
from app.decision import Decision
from app.loop import TapLoop


class _Signals:
    def start(self, pattern):
        self.pattern = pattern


class _Board:
    signals = _Signals()
    display = None


class _Validator:
    def fault(self, name, detail):
        pass


def _loop():
    lp = TapLoop(_Board(), _Validator())
    lp.display_ok = False      # no display in this test: the answer's text is not drawn
    return lp


def _garbage(n):
    junk = None
    for _ in range(n):
        junk = bytearray(256)
    return junk is not None


def _collected_during(fn):
    gc.collect()
    _garbage(40)                # ~10 KB the collector can free
    a0 = gc.mem_alloc()
    c0 = micropython.mem_current()
    fn()
    return (gc.mem_alloc() - a0) - (micropython.mem_current() - c0) < -4096


def test_answer_collects_after_the_tap():
    lp = _loop()
    d = Decision(record.QR, 1800000000, True)
    assert _collected_during(lambda: lp.answer(d))
    assert lp.b.signals.pattern == "rejected"


def test_detector_sees_no_collection_where_none_runs():
    # the control: the same garbage and a call that allocates but does not collect
    assert not _collected_during(lambda: bytearray(64))
