# The validator's depot link (firmware/app/depot.py: when to sync, the time it believes,
# what it shows and journals) under MicroPython, driven line by line by
# tests/host/test_trust_boundaries.py. Real parts: the journal on the flash model, tap
# records, the sync client over real HTTP to the depot on loopback. Stand-ins: the Wi-Fi
# interface (connected or not), the DS3231 (a clock the test sets), and the loop's clock
# in *virtual* milliseconds, so "within N seconds" is decided by the firmware's own
# scheduling, not by how fast this machine is: virtual time stands still while a request
# is in flight (the depot on loopback answers in real time) and moves 50 ms per loop turn
# otherwise.
#
#   {"op": "init", ...}    {"op": "tap", "n": k}   (the loop busy for the answer's 3 s)
#   {"op": "run", "ms": virtual ms, "until": "acked"|"installed"|"done"|null}
#   {"op": "clock", "t": unix s, "trusted": bool}      {"op": "status"}
import binascii
import time

import esp32
import flashdev
from app.depot import Depot
from app.record import RecordWriter, decode
from journal import Journal
from mp_serve import serve

H = binascii.unhexlify
S = None
STEP_MS = 50
ANSWER_MS = 3000   # app/loop.py: an answer stays on the screen this long
BUSY = (1, 2, 3, 4, 7)   # client states with a request in flight: virtual time stands still


class WLAN:
    def __init__(self):
        self.up = True

    def isconnected(self):
        return self.up

    def active(self, on=None):
        return True

    def connect(self, ssid, psk):
        pass


class Cfg:
    def __init__(self, req):
        self.wifi = {"ssid": "depot", "psk": "password1"}
        self.depot_url = req.get("bundle_url") or req["url"]
        # a config bundle moved the depot link: config.json's own is the fallback
        self.base_link = (self.wifi, req["url"]) if req.get("bundle_url") else None
        self.device_id = req["device"]
        self._key = H(req["opkey"])

    def operator_key_bytes(self):
        return self._key


class V:   # the validator's faults, as app/state.Validator keeps them
    def __init__(self):
        self.faults = []
        self.details = {}

    def fault(self, name, detail):
        if name not in self.faults:
            self.faults.append(name)
        self.details[name] = detail

    def clear(self, name):
        if name in self.faults:
            self.faults.remove(name)


class Session:
    def __init__(self, req):
        import os
        if req.get("fresh"):
            try:
                os.remove(req["flash"])
            except OSError:
                pass
        self.flash = flashdev.Flash(256 * 1024, req["flash"])
        esp32.attach(self.flash, 32 * 1024)
        self.journal = Journal(esp32.Partition("journal"))
        self.journal.mount()
        self.rw = RecordWriter()
        self.rtc = [req.get("t", 1780000000), req.get("trusted", True)]
        self.v = V()
        self.bundles = []
        self.vt = time.ticks_ms()       # virtual ms (from the real ticks: the Depot's start)
        self.rider = 0                  # turns a rider is still at the reader
        self.started_busy = 0           # sessions started on a turn with a rider: must be 0
        self.d = Depot(Cfg(req), H(req["secret"]), self.journal, req["data"], self.set_time,
                       self.bundles.append, self.clock, self.v)
        self.d.wlan = WLAN()

    def set_time(self, t):
        self.rtc[0] = t
        self.rtc[1] = True

    def clock(self):
        return self.rtc[0], self.rtc[1]

    def turn(self):
        idle = self.rider == 0
        if self.rider:
            self.rider -= 1
        was = self.d.sessions
        self.d.step(self.vt, idle)
        if not idle and self.d.sessions != was:
            self.started_busy += 1
        c = self.d.client
        if c is None or c.state not in BUSY:
            self.vt += STEP_MS
        else:
            time.sleep_ms(1)


def op_init(req):
    global S
    S = Session(req)
    return status()


def op_tap(req):
    seqs = []
    for i in range(req.get("n", 1)):
        p = S.rw.encode(S.rtc[0], 0, 2, 0, 0, b"W%07d" % i, b"P%07d" % i, 0, 3500,
                        b"%016d" % (S.vt + i), 1)
        seqs.append(S.journal.append(bytes(p), S.rtc[0]))
    # the answer stays on the screen ANSWER_MS (app/loop.py): the loop is not idle till then
    S.rider = ANSWER_MS // STEP_MS
    S.turn()
    return {"seqs": seqs, "vt": S.vt}


def op_run(req):
    end = S.vt + req["ms"]
    until = req.get("until")
    t0 = time.ticks_ms()
    n0 = len(S.bundles)
    s0 = S.d.sessions
    while S.vt < end:
        S.turn()
        if time.ticks_diff(time.ticks_ms(), t0) > 60000:
            return dict(status(), timeout=True)
        st = S.journal.status()
        if until == "acked" and st.unsent == 0:
            break
        if until == "installed" and len(S.bundles) > n0:
            break
        if until == "done" and S.d.sessions > s0 and S.d.state == "done" and \
                not S.d.busy():
            break
    return status()


def op_clock(req):
    S.rtc[0] = req["t"]
    S.rtc[1] = req["trusted"]
    return status()


def status():
    st = S.journal.status()
    events = []
    for seq, _t, payload in S.journal.since(max(1, st.last_seq - 20)):
        r = decode(payload)
        if r.get(4) == 3:
            events.append([seq, r.get(5), r.get(13)])
    c = S.d.client
    return {"vt": S.vt, "unsent": st.unsent, "last_seq": st.last_seq, "inc": st.incarnation,
            "sessions": S.d.sessions, "state": S.d.state, "faults": S.v.faults,
            "rtc": S.rtc, "bundles": S.bundles, "events": events,
            "started_busy": S.started_busy, "last_error": S.d.last_error,
            "time_refused": None if c is None or c.time_refused is None
            else list(c.time_refused)}


OPS = {"init": op_init, "tap": op_tap, "run": op_run, "clock": op_clock,
       "status": lambda req: status()}


serve(OPS)
