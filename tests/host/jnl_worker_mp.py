# MicroPython worker for tests/host/test_jnl_fuzz.py (run by tests/support/mp.MPWorker with
# sim/vboard on the path): one JSON request per line, one JSON answer per line.
#
# Request: {"sectors": n, "ops": [[op, args...], ...]} — a fresh chip each request.
#   ["a", n]            append a payload of n bytes (content derived from a counter)
#   ["k", back]         ack(last_seq - back)
#   ["m"]               maintain()
#   ["r"]               reboot: fresh Journal over the chip, mount()
#   ["c", off, seed, n] cut the power `off` operations ahead, append n bytes, reboot
#   ["z", addr, hex]    overwrite raw bytes on the chip (corruption), then reboot
#   ["u"]               every unsent record
#   ["s", first]        since(first), then status().first_seq
# Answer: {"res": [...]} one result per op, or {"escaped": "..."} if an exception other
# than a JournalError escaped (the test insists none does).
import json
import sys
from binascii import hexlify, unhexlify

import flashdev
from flashdev import Flash, Partition
from journal import Journal, JournalError, JournalFull

T = 1750000000


def payload(i, n):
    return bytes([(i * 31 + k * 7 + 1) & 0xFF for k in range(n)])


def status(st):
    return [st.unsent, st.last_seq, st.acked_seq, st.lost, st.full]


def run(req):
    size = req["sectors"] * 4096
    f = Flash(size)
    j = Journal(Partition(f, 0, size))
    res = [status(j.mount())]
    counter = [0]

    def append(n):
        i = counter[0]
        counter[0] += 1
        try:
            return [j.append(payload(i, n), T + i), i]
        except JournalFull:
            return "full"

    def reboot():
        f.power_on()
        jj = Journal(Partition(f, 0, size))
        return jj, status(jj.mount())

    for op in req["ops"]:
        k = op[0]
        if k == "a":
            res.append(append(op[1]))
        elif k == "k":
            upto = j.status().last_seq - op[1]
            if upto >= 1:
                j.ack(upto)
            res.append(j.status().acked_seq)
        elif k == "m":
            res.append(j.maintain())
        elif k == "r":
            j, st = reboot()
            res.append(st)
        elif k == "c":
            f.arm_cut(f.op_index + op[1], op[2])
            try:
                r = append(op[3])
            except flashdev.PowerCut:
                r = "cut"
            j, st = reboot()
            res.append([r, st, counter[0] - 1])
        elif k == "z":
            data = unhexlify(op[2])
            for n in range(len(data)):
                if op[1] + n < size:
                    f.mem[op[1] + n] = data[n]
            j, st = reboot()
            res.append(st)
        elif k == "s":
            res.append([[q, t, hexlify(p).decode()] for q, t, p in j.since(op[1])]
                       + [j.status().first_seq])
        elif k == "u":
            res.append([[s, t, hexlify(p).decode()] for s, t, p in j.unsent(100000, 10 ** 7)])
    return res


def main():
    while True:
        line = sys.stdin.readline()
        if not line:
            break
        try:
            out = {"res": run(json.loads(line))}
        except JournalError as e:
            out = {"journal_error": "%s: %s" % (type(e).__name__, e)}
        except Exception as e:  # noqa: B902 - reported, so the test fails on it
            out = {"escaped": "%s: %s" % (type(e).__name__, e)}
        print(json.dumps(out))


main()
