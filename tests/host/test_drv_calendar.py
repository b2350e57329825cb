"""The DS3231 driver's integer calendar (runs on both epochs) against CPython's datetime,
for generated dates across the chip's range, under MicroPython."""

import datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.mp import run_code

EPOCH = datetime.date(1970, 1, 1)


@settings(max_examples=5, deadline=None)
@given(st.lists(st.dates(datetime.date(2000, 1, 1), datetime.date(2199, 12, 31)),
                min_size=1, max_size=60))
def test_days_from_civil_matches_datetime(dates):
    args = [(d.year, d.month, d.day) for d in dates]
    out = run_code("from drivers.ds3231 import days_from_civil as f, civil_from_days as g\n"
                   "for a in %r:\n"
                   "    z = f(*a)\n"
                   "    print(z, *g(z))\n" % (args,))
    for d, line in zip(dates, out.split("\n")):
        z, y, m, dd = map(int, line.split())
        assert z == (d - EPOCH).days and (y, m, dd) == (d.year, d.month, d.day)
