# Tap records read back (app/record.py writes them): for journal recovery at boot, the
# simulator and the tests. Not the tap path's: app/record.py loads it on first use of
# record.decode (its __getattr__).
from app.record import (T_ANSWER, T_CHANNEL, T_CLOCK, T_FARE, T_REASON, T_TIME,
                        RecordError)


def _read_head(data, i):
    ib = data[i]
    major, ai = ib >> 5, ib & 31
    i += 1
    if ai < 24:
        return major, ai, i
    n = {24: 1, 25: 2, 26: 4}.get(ai)
    if n is None or i + n > len(data):
        raise RecordError("bad head")
    v = 0
    for k in range(n):
        v = (v << 8) | data[i + k]
    return major, v, i + n


def decode(data):
    """Record bytes -> {key: value}; RecordError if they are not a tap record.

    For the simulator and tests on the device side; the depot decodes with cbor2."""
    try:
        major, count, i = _read_head(data, 0)
        if major != 5:
            raise RecordError("not a map")
        out = {}
        last = 0
        for _ in range(count):
            mk, key, i = _read_head(data, i)
            if mk != 0 or key <= last:
                raise RecordError("keys not ascending uints")
            last = key
            mv, v, i = _read_head(data, i)
            if mv == 2:
                if i + v > len(data):
                    raise RecordError("truncated")
                out[key] = bytes(data[i:i + v])
                i += v
            elif mv == 0:
                out[key] = v
            else:
                raise RecordError("bad value type")
        if i != len(data):
            raise RecordError("trailing bytes")
        for k in (T_TIME, T_CLOCK, T_CHANNEL, T_ANSWER, T_REASON, T_FARE):
            if k not in out:
                raise RecordError("missing field %d" % k)
        return out
    except IndexError:
        raise RecordError("truncated")
