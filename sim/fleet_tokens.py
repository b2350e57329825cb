"""The fleet day's world (sim/fleet.py): keys, provisioning files and every rider's tap
tokens, made with the real host tools (host/tokens, host/bundles), deterministic for a seed
(keys and ids derived from it; ECDSA signatures themselves are randomised, so the bytes of a
proof differ between runs, never a decision).
"""

import json

from host import bundles as hb
from host import tokens as ht
from sim import fleet_model as fm

ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
FARES = {0: 3500, 1: 1000, 2: 1000, 3: 1000, 4: 1000, 5: 1000}
DS3231_RESET = 946684800   # an oscillator-stopped DS3231 reads 2000-01-01 and counts on


def det_key(seed, name):
    d = int.from_bytes(fm.det_bytes(seed, "key", name, n=32), "big") % (ORDER - 1) + 1
    return ht.key_from_int(d)


class FleetWorld:
    def __init__(self, plan):
        self.plan = plan
        s = plan.seed
        self.operator = det_key(s, "operator")
        self.issuer = det_key(s, "issuer")
        self.opub = ht.public_bytes(self.operator)
        self._phones, self._passes, self._count = {}, {}, {}
        self.ids = {}
        for name in plan.wallets:
            self.ids[name] = (fm.det_bytes(s, "wallet", name), fm.det_bytes(s, "pass", name))

    def secret(self, bus):
        return fm.det_bytes(self.plan.seed, "secret", bus.device, n=32)

    def depot_secret(self, depot):
        return fm.det_bytes(self.plan.seed, "depot", depot, n=32)

    def provision(self, bus, depot_url):
        """{name: bytes} that provisioning writes to the validator's /data (no deny list
        yet: the first one comes from the depot)."""
        at = fm.DAY0 - 86400
        trust = hb.sign_bundle(hb.TRUST, 1, hb.trust_body(
            [(ht.public_bytes(self.issuer), at - 365 * 86400, at + 5 * 365 * 86400,
              hb.USAGE_PASS)]), self.operator, at)
        fares = hb.sign_bundle(hb.FARES, 1, hb.fares_body(FARES), self.operator, at)
        cfg = {"v": 1, "device_id": bus.device, "operator": "TSM", "bus": bus.id,
               "route": bus.route, "wifi": {"ssid": "depot", "psk": "depot-wifi-key"},
               "depot_url": depot_url, "operator_key": self.opub.hex(),
               "qr_window_s": 30, "passback_s": 60, "locked": False}
        return {"trust.cose": trust, "fares.cose": fares,
                "config.json": json.dumps(cfg).encode(), "secret.bin": self.secret(bus)}

    def _pass(self, name):
        if name not in self._passes:
            w = self.plan.wallets[name]
            phone = det_key(self.plan.seed, "phone-" + name)
            wid, pid = self.ids[name]
            iat = fm.DAY0 - 86400
            self._phones[name] = phone
            self._passes[name] = ht.mint_pass(self.issuer, phone, wid, pid, w.category,
                                              w.allowance, iat, iat + 7 * 86400)
        return self._passes[name]

    def passes(self):
        """[(pass id, wallet id, allowance)]: the issuer's data for the back office."""
        return [(self.ids[n][1], self.ids[n][0], w.allowance) for n, w in self.plan.wallets.items()]

    def tap_line(self, bus, k, trip, t_dev=None, ok=True, salt=0):
        """One tap of `trip` on `bus` as the worker reads it (sim/fleet_mp.py)."""
        p = self._pass(trip.wallet)
        self._count[trip.wallet] = c = self._count.get(trip.wallet, 0) + 1
        phone = self._phones[trip.wallet]
        line = {"t": trip.t if t_dev is None else t_dev, "ok": ok}
        if trip.channel == "q":
            if trip.copy_of is not None:     # the clone shows the other phone's code
                line["q"] = trip.copy_of.qr
            elif trip.qr is not None and not salt:
                line["q"] = trip.qr
            else:
                trip_qr = ht.qr_text(p, ht.make_proof(p, phone, trip.t, c))
                trip.qr = trip_qr
                line["q"] = trip_qr
        else:
            ch = fm.det_bytes(self.plan.seed, "challenge", bus.id, k, salt, n=16)
            line["n"] = ht.nfc_payload(p, ht.make_proof(p, phone, trip.t, c, ch)).hex()
            line["c"] = ch.hex()
        return line

