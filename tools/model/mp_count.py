# Run under MicroPython (MICROPYPATH = the engine's .mpy dir : firmware):
#   micropython tools/model/mp_count.py <vectors file>
# Each line of the file: pub hex, digest hex, sig hex (valid signatures). For every one,
# verifies it once with a new key and once with the key prepared, and prints one line:
#   C <path> <program>=<runs> ...   the engine programs a verification ran (DBL: doublings)
# then, timed over all vectors (medians, microseconds on this unix port):
#   T <path> <median us> <median us with a no-op engine>
# The no-op engine returns at once: what is left is the bytecode and the calls (modelled
# at the bytecode rate, DESIGN §2).
import sys
import time

import p256_engine as eng
from tokens import p256

NAMES = ("DBL", "ADDP", "ADDN", "SETP", "SETN", "HZERO", "RZERO", "ADDREST", "QTAB1",
         "QTAB2", "DECOMP", "NEGY", "FIN", "IMP3", "OUT3")
PROGS = [getattr(p256, n) for n in NAMES]
counts = {}
real = eng.run


MSM_NAMES = ("MSM_DBL", "MSM_ADD", "MSM_SET", "MSM_HZ", "MSM_RZ", "MSM_REST", "MSM_SCAN",
             "MSM_SWITCH", "MSM_REP")


def counting(s, c, prog, t):
    if s[2]:   # MSM mode: one call runs the whole loop; the engine counts its steps
        base = 2 * eng.CNT
        for i in range(20):
            s[base + i] = 0
        r = real(s, c, prog, t)
        for i, k in enumerate(MSM_NAMES):
            counts[k] = counts.get(k, 0) + (s[base + 2 * i] | s[base + 2 * i + 1] << 8)
        counts["MSM"] = counts.get("MSM", 0) + 1
        return r
    for i in range(len(PROGS)):
        if prog is PROGS[i]:
            k = NAMES[i]
            counts[k] = counts.get(k, 0) + ((s[0] | s[1] << 8) if k == "DBL" else 1)
            break
    return real(s, c, prog, t)


def noop(s, c, prog, t):
    return 0


real_inv = eng.inv
real_wnaf = eng.wnaf


def counting_wnaf(s, c, k, spec):
    steps = real_wnaf(s, c, k, spec)
    counts["WNAF"] = counts.get("WNAF", 0) + 1
    counts["WNAF_STEPS"] = counts.get("WNAF_STEPS", 0) + steps
    if spec >> 24:   # cleared every stream: 514 words
        counts["WNAF_CLEAR"] = counts.get("WNAF_CLEAR", 0) + 514
    return steps


answers = {}


def _inv_key(s, m):
    # the Euclid's inputs: a at IU, b at IX1 (b / a mod m; b = 1 for an inverse), m
    return bytes(s[4:36]) + bytes(s[68:100]) + bytes(m)


def counting_inv(s, c, m):
    key = _inv_key(s, m)
    r = real_inv(s, c, m)
    answers[key] = bytes(s[100:132])
    # the engine's step counters (tools/gen_p256_inv.py: ICNT = 66): halvings of u, of v,
    # subtractions from u, from v, bits halved
    for i, k in enumerate(("INV_HU", "INV_HV", "INV_SU", "INV_SV", "INV_BITS")):
        counts[k] = counts.get(k, 0) + (s[2 * (66 + i)] | s[2 * (66 + i) + 1] << 8)
    counts["INV"] = counts.get("INV", 0) + 1
    return r


def noop_wnaf(s, c, k, spec):
    return 0


_ANY = bytes([1]) + bytes(31)


def noop_inv(s, c, m):
    # the no-op engine's inverse: the answer is needed for the bytecode to go on, so it is
    # looked up from the counting pass (a dict probe and a copy: a little bytecode, which
    # the model then counts at the bytecode rate, an overestimate). A table's inversion
    # (its input came from the skipped engine, so it is not in the dict) gets any answer:
    # nothing uses it, and running the real inverse here would count its time twice - as
    # bytecode, and in the native count (INV_*) where the counting pass put it.
    a = answers.get(_inv_key(s, m))
    s[100:132] = _ANY if a is None else a
    return 1


def median(xs):
    xs = sorted(xs)
    return xs[len(xs) // 2]


def main(path):
    vecs = []
    with open(path) as f:
        for line in f:
            a = line.split()
            if len(a) == 3:
                vecs.append([bytes.fromhex(x) for x in a])
    p256.init()
    prepared = []
    for pub, _dg, _sig in vecs:
        q = p256.decode_point(pub)
        prepared.append((q, p256.prepare(q[0], q[1])))
    for path_name in ("new", "prepared"):
        for i in range(len(vecs)):
            pub, dg, sig = vecs[i]
            q, tabs = prepared[i]
            counts.clear()
            p256._run = counting
            p256._inv_eng = counting_inv
            p256._wnaf_eng = counting_wnaf
            if path_name == "new":
                ok = p256.verify_point(q[0], q[1], dg, sig)
            else:
                ok = p256.verify_prepared(tabs, dg, sig)
            p256._run = real
            p256._inv_eng = real_inv
            p256._wnaf_eng = real_wnaf
            if not ok:
                raise SystemExit("vector %d does not verify" % i)
            print("C", path_name, " ".join("%s=%d" % kv for kv in sorted(counts.items())))
    for path_name in ("new", "prepared"):
        row = []
        for engine, iv, wn in ((real, real_inv, real_wnaf), (noop, noop_inv, noop_wnaf)):
            p256._run = engine
            p256._inv_eng = iv
            p256._wnaf_eng = wn
            ts = []
            for i in range(len(vecs)):
                pub, dg, sig = vecs[i]
                q, tabs = prepared[i]
                t0 = time.ticks_us()
                if path_name == "new":
                    p256.verify_point(q[0], q[1], dg, sig)
                else:
                    p256.verify_prepared(tabs, dg, sig)
                ts.append(time.ticks_diff(time.ticks_us(), t0))
            row.append(median(ts))
        p256._run = real
        p256._inv_eng = real_inv
        p256._wnaf_eng = real_wnaf
        print("T", path_name, row[0], row[1])


main(sys.argv[1])
