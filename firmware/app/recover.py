# After a reboot (power cut, reset, watchdog): bring the replay/passback ring and the
# allowance sums back to where they were, from the journal.
#
# The tap path writes only the journal; the ring and the sums are checkpointed to files
# in idle time (app/recent.py, app/allowance.py). Every journal record after the ring's
# checkpoint (`upto_seq`) is therefore replayed here: an accepted or already-paid tap
# marks its proof and wallet again, an accepted tap re-adds its fare to its pass unless
# the allowance slot already counted it (its last seq says so).
from micropython import const

from app import record
from app.denylist import key as deny_key

FAR_EXP = const(30 * 86400)   # a replayed pass's expiry is not in the record: keep 30 days


def replay(pipeline, journal):
    """Re-apply the journal records after the ring's checkpoint; returns how many."""
    recent = pipeline.recent
    allowance = pipeline.allowance
    last = journal.status().last_seq
    if recent.upto_seq > last:
        # a checkpoint newer than the journal (the journal was formatted): it covers
        # nothing that is in this journal
        recent.upto_seq = last
    pipeline.last_seq = recent.upto_seq
    first = recent.upto_seq + 1
    n = 0
    # Journal.since: the records still on flash from `first` on, acked or not (a tap
    # acknowledged by the depot a moment ago must still mark its proof)
    for seq, _t, payload in journal.since(first):
        n += 1
        if seq > pipeline.last_seq:
            pipeline.last_seq = seq
        try:
            r = record.decode(payload)
        except record.RecordError:
            continue                  # not a tap record (or a future format): nothing to mark
        answer = r.get(record.T_ANSWER)
        pid = r.get(record.T_PROOF)
        wid = r.get(record.T_WALLET)
        t = r.get(record.T_TIME, 0)
        if answer not in (record.ACCEPTED, record.ALREADY_PAID) or pid is None or wid is None:
            continue
        if not recent.seen_proof(pid):
            slot = recent.free_slot(t, pipeline.horizon)
            if slot >= 0:
                recent.put(slot, pid, deny_key(b"W", wid), t, answer == record.ACCEPTED)
        pass_id = r.get(record.T_PASS)
        fare = r.get(record.T_FARE, 0)
        if answer == record.ACCEPTED and pass_id is not None and fare:
            pkey = deny_key(b"P", pass_id)
            _, _, counted = allowance.find(pkey, t)
            if seq > counted:
                allowance.add(pkey, fare, t + FAR_EXP, seq, t)
    recent.dirty = recent.dirty or n > 0
    return n
