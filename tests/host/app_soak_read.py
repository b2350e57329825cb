# MicroPython: app_soak_mp.py's check that every tap was journaled once, imported after
# the taps (its code is not in the heap while they run). The journal read back page by
# page and acknowledged, as the depot does.
from app import record


def read_back(j, bad):
    """(records seen, records accepted); gaps in the sequence go to `bad` (ten at most)."""
    seen = 0
    accepted = 0
    prev = 0
    while True:
        batch = j.unsent(limit=8, max_bytes=512)
        if not batch:
            break
        for seq, _t, payload in batch:
            if seq != prev + 1 and len(bad) < 10:
                bad.append(("gap", prev, seq))
            prev = seq
            r = record.decode(payload)
            seen += 1
            if r[record.T_ANSWER] == record.ACCEPTED:
                accepted += 1
        j.ack(batch[-1][0])
        batch = None
    return seen, accepted
