"""The fleet day's plan (sim/fleet.py): a fleet modelled on Trans-Semarang (DESIGN §1), every
bus, rider trip and incident of one day, deterministic for a seed.

Modelling assumptions (stated, not measured; change them here):
- 270 buses: 8 corridors (K1-K8, 25 buses each) and 7 feeders (F1-F7, 10 each), in 3 depots;
- 33,000 rider trips a day; 60 % pay non-cash (tap a phone wallet: the validator's work),
  the rest cash; of the non-cash riders 20 % pay a concession fare (Rp 1,000; regular
  Rp 3,500); corridors carry 85 % of the trips;
- most riders make a return trip: 70 % of the non-cash trips are by two-trip wallets;
- trips over 05:30-21:30 WIB with a morning peak (07:00, sd 1 h, 35 %) and an evening peak
  (17:00, sd 1.2 h, 35 %) over a flat base (30 %); 55 % of taps by QR, 45 % by NFC;
- 30 % of the buses lay over at their depot at 13:05 (they sync there); the rest sync only
  in the evening, at 22:30.
A sample (`--sample 0.1`) keeps every n-th bus of each route and only the trips on them.
"""

import hashlib
import math
import random

DAY0 = 1_800_000_000 - 1_800_000_000 % 86400 - 7 * 3600   # midnight WIB (UTC+7)
H = 3600
NONCASH, CONCESSION, CORRIDOR_SHARE, TWO_TRIP, QR_SHARE, LAYOVER = 0.60, 0.20, 0.85, 0.70, 0.55, 0.30
RIDERS = 33_000
CORRIDORS = ["K%d" % i for i in range(1, 9)]
FEEDERS = ["F%d" % i for i in range(1, 8)]
DEPOTS = ["depo-mangkang", "depo-penggaron", "depo-terboyo"]
LAYOVER_T = DAY0 + 13 * H + 5 * 60
EVENING_T = DAY0 + 22 * H + 30 * 60
NOON = DAY0 + 12 * H
UPLINK_DOWN = (DAY0 + 11 * H, DAY0 + 23 * H)   # the third depot's uplink
RESTORE_T = DAY0 + 23 * H + 30 * 60
LATE_T = DAY0 + 2 * 86400 + 8 * H              # the buses that missed the depot come in
DEFAULT_ALLOWANCE = 200_000


def det_bytes(seed, *what, n=8):
    return hashlib.sha256(("%s|" % seed + "|".join(map(str, what))).encode()).digest()[:n]


class Bus:
    def __init__(self, bid, route, depot, index):
        self.id, self.route, self.depot, self.index = bid, route, depot, index
        self.device = "240ac4%06x" % (0x100000 + index)
        self.layover = False
        self.missed = False       # misses the depot for two days
        self.clock_fault = None   # (from, until): the DS3231 lost its time
        self.cuts = []            # trip indexes whose decision a power cut hits
        self.brownouts = 0
        self.trips = []           # [Trip], by time

    @property
    def corridor(self):
        return self.route if self.route.startswith("K") else "feeder"


class Trip:
    __slots__ = ("t", "wallet", "channel", "copy_of", "tag", "qr")

    def __init__(self, t, wallet, channel, tag=None):
        self.t, self.wallet, self.channel, self.copy_of, self.tag = t, wallet, channel, None, tag
        self.qr = None


class Wallet:
    def __init__(self, name, category, allowance=DEFAULT_ALLOWANCE):
        self.name, self.category, self.allowance = name, category, allowance


def _hour(rnd):
    u = rnd.random()
    if u < 0.35:
        h = rnd.gauss(7.0, 1.0)
    elif u < 0.70:
        h = rnd.gauss(17.0, 1.2)
    else:
        h = rnd.uniform(5.5, 21.5)
    return min(21.49, max(5.5, h))


class Plan:
    def __init__(self, seed=1, sample=0.1):
        self.seed, self.sample = seed, sample
        rnd = random.Random(seed)
        routes = [(r, 25) for r in CORRIDORS] + [(r, 10) for r in FEEDERS]
        self.all_buses = []
        for ri, (r, n) in enumerate(routes):
            for k in range(n):
                i = len(self.all_buses)
                self.all_buses.append(Bus("%s-%02d" % (r, k + 1), r, DEPOTS[ri % 3], i))
        every = max(1, round(1 / sample)) if sample < 1 else 1
        self.buses = [b for b in self.all_buses if int(b.id[-2:]) % every == 1 % every]
        self.by_route = {}
        for b in self.buses:
            self.by_route.setdefault(b.route, []).append(b)
        self.wallets = {}
        self.trips = 0
        self._riders(rnd)
        self._incidents(rnd)
        for b in self.buses:
            b.trips.sort(key=lambda x: x.t)

    def _wallet(self, name, category, allowance=DEFAULT_ALLOWANCE):
        w = self.wallets[name] = Wallet(name, category, allowance)
        return w

    def _riders(self, rnd):
        share = len(self.buses) / len(self.all_buses)
        n_trips = round(RIDERS * NONCASH * share)
        self.cash_riders = round(RIDERS * (1 - NONCASH) * share)
        cor = [r for r in self.by_route if r.startswith("K")]
        fee = [r for r in self.by_route if r.startswith("F")]
        made = 0
        while made < n_trips:
            name = "w%06d" % len(self.wallets)
            self._wallet(name, rnd.choice([1, 2, 3, 4, 5]) if rnd.random() < CONCESSION
                             else 0)
            legs = 2 if rnd.random() < TWO_TRIP / (2 - TWO_TRIP) else 1
            route = rnd.choice(cor if (rnd.random() < CORRIDOR_SHARE or not fee) else fee)
            out = _hour(rnd)
            if legs == 1:
                times = [out]
            elif out < 12:     # back in the evening peak
                times = [out, max(out + 1, min(21.49, rnd.gauss(17.0, 1.2)))]
            else:
                times = [out, out + rnd.uniform(0, 21.49 - out)]
            for h in times[:n_trips - made]:
                bus = rnd.choice(self.by_route[route])
                ch = "q" if rnd.random() < QR_SHARE else "n"
                bus.trips.append(Trip(DAY0 + int(h * H), name, ch))
                made += 1
        self.trips = made

    def _incidents(self, rnd):
        buses = self.buses
        n = len(buses)
        for b in rnd.sample(buses, max(1, round(n * LAYOVER))):
            b.layover = True
        # power cuts during decisions (3 % of buses, 1-3 each), brown-outs in idle (2 %)
        for b in rnd.sample(buses, max(1, round(n * 0.03))):
            if b.trips:
                b.cuts = sorted(rnd.sample(range(len(b.trips)), min(len(b.trips),
                                                                    rnd.randint(1, 3))))
        for b in rnd.sample(buses, max(1, round(n * 0.02))):
            b.brownouts = 1
        # buses that miss the depot for two days (1 % of the fleet, at least one)
        normal = [b for b in buses if not b.layover]
        for b in rnd.sample(normal, max(1, round(n * 0.01))):
            b.missed = True
        # a validator whose DS3231 lost its time at 09:00; the depot sets it at the layover
        lay = [b for b in buses if b.layover and not b.cuts and not b.brownouts]
        self.clock_bus = rnd.choice(lay)
        self.clock_bus.clock_fault = (DAY0 + 9 * H, LAYOVER_T)
        self._planted(rnd)

    def _pick(self, rnd, depot=None, layover=None, exclude=()):
        c = [b for b in self.buses if (depot is None or b.depot == depot) and not b.missed
             and (layover is None or b.layover == layover) and b not in exclude
             and b is not self.clock_bus]
        return rnd.choice(c or [b for b in self.buses if b not in exclude])

    def _planted(self, rnd):
        """The anomalies the back office must find (reconciliation counts them)."""
        self.planted = {}
        # a wallet cloned onto two phones: the second phone shows the first one's QR code
        # on another bus 10 s later (the same proof, accepted by two validators)
        self._wallet("clone", 0)
        a = self._pick(rnd)
        b = self._pick(rnd, exclude=(a,))
        t = DAY0 + 8 * H + 17 * 60
        first = Trip(t, "clone", "q", "clone-1")
        second = Trip(t + 10, "clone", "q", "clone-2")
        second.copy_of = first
        a.trips.append(first)
        b.trips.append(second)
        self.planted["clone_double_use"] = {"wallet": "clone", "buses": [a.id, b.id]}
        # a wallet revoked at noon that keeps riding: morning rides, then afternoon attempts
        # on a bus that learned it at the layover and on one whose depot's uplink was down
        self._wallet("revoked", 0)
        att = []
        for h in (7.5, 10.25):
            bus = self._pick(rnd)
            bus.trips.append(Trip(DAY0 + int(h * H), "revoked", "n"))
        for i, (depot, h) in enumerate(((DEPOTS[0], 14.5), (DEPOTS[1], 15.25),
                                        (DEPOTS[2], 16.0), (DEPOTS[0], 18.5))):
            bus = self._pick(rnd, depot=depot, layover=True)
            bus.trips.append(Trip(DAY0 + int(h * H), "revoked", "q" if i % 2 else "n",
                                  "revoked-%d" % i))
            att.append(bus.id)
        self.planted["revoked_attempts"] = {"wallet": "revoked", "at": NOON, "buses": att}
        # over-allowance: Rp 7,000 offline (two regular rides), four rides on four buses
        self._wallet("greedy", 0, allowance=7000)
        used = []
        for h in (6.5, 9.0, 15.0, 19.0):
            bus = self._pick(rnd, exclude=used)
            used.append(bus)
            bus.trips.append(Trip(DAY0 + int(h * H), "greedy", "n", "greedy"))
        self.planted["over_allowance"] = {"wallet": "greedy", "allowance": 7000,
                                          "buses": [b.id for b in used]}
        self.planted["clock_fault"] = {"bus": self.clock_bus.id,
                                       "from": self.clock_bus.clock_fault[0]}

    def summary(self):
        return {"seed": self.seed, "sample": self.sample, "buses": len(self.buses),
                "fleet": len(self.all_buses), "routes": len(self.by_route),
                "depots": DEPOTS, "noncash_trips": self.trips, "cash_riders": self.cash_riders,
                "wallets": len(self.wallets), "layover_buses": sum(b.layover for b in self.buses),
                "missed_depot": [b.id for b in self.buses if b.missed],
                "power_cut_buses": [b.id for b in self.buses if b.cuts],
                "brownout_buses": [b.id for b in self.buses if b.brownouts],
                "clock_fault_bus": self.clock_bus.id, "uplink_down": [DEPOTS[2]] + list(
                    UPLINK_DOWN)}


def hour_of(t):
    return math.floor((t - DAY0) / H)
