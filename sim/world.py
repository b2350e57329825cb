"""The simulator's embedded defaults: keys, trust list, fare table, deny list, config and
the demo wallets - generated on first run into a state directory (build/sim/ by default),
so `make sim` needs no server and no setup.

Everything is made with the real host tools (host/tokens for passes and proofs,
host/bundles for operator-signed bundles), exactly as a depot and a wallet operator would:
the firmware cannot tell the simulator's data from production data.

    w = World.load_or_create(path)
    files = w.data_files()           # {"/data/config.json": bytes, ...} to seed the flash
    text  = w.qr("regular", now)     # QR text of that wallet at that time
    card  = w.nfc_answer("regular", challenge16, now)   # what the phone answers to TAP
"""

import json
import os
import pathlib
import secrets

from host import bundles as hb
from host import tokens as ht

OPERATOR = "TSM"
FARES = {0: 3500, 1: 1000, 2: 1000, 3: 1000, 4: 1000, 5: 1000}   # Trans-Semarang non-cash
DAY = 86400

# The demo wallets of the simulator (name -> what it is and what the validator must say).
# "expect" is (answer, reason name) as the decision gives it; the tests check these.
WALLETS = {
    "regular": "valid pass, regular fare (Rp 3.500)",
    "concession": "valid pass, student fare (Rp 1.000)",
    "expired": "pass expired yesterday",
    "revoked": "wallet on the deny list",
    "forged": "pass signature made with a key that is not the issuer's",
    "screenshot": "QR shown again a minute after it was made (stale proof)",
    "other-operator": "valid pass of another operator",
    "garbage": "not a token at all",
}
WALLET_ORDER = list(WALLETS)


class World:
    def __init__(self, root, keys, ids, device_id, secret, depot_port=8080):
        self.root = pathlib.Path(root)
        self.depot_port = depot_port  # the embedded depot host's port (fixed per world)
        self.keys = keys          # name -> private key (operator, issuer, forger, phones)
        self.ids = ids            # wallet name -> (wallet_id, pass_id)
        self.device_id = device_id
        self.secret = secret
        self.counters = {}
        self.passes = {}

    # --- creation -----------------------------------------------------------------------

    @classmethod
    def load_or_create(cls, root):
        root = pathlib.Path(root)
        kdir = root / "keys"
        meta = root / "world.json"
        if meta.exists():
            m = json.loads(meta.read_text())
            keys = {n: ht.load_key(kdir / (n + ".pem")) for n in m["keys"]}
            ids = {n: (bytes.fromhex(w), bytes.fromhex(p)) for n, (w, p) in m["ids"].items()}
            return cls(root, keys, ids, m["device_id"], bytes.fromhex(m["secret"]),
                       m.get("depot_port", 8080))
        kdir.mkdir(parents=True, exist_ok=True)
        names = ["operator", "issuer", "forger"] + ["phone-" + w for w in WALLET_ORDER]
        keys = {n: ht.generate_key() for n in names}
        for n, k in keys.items():
            ht.save_key(k, kdir / (n + ".pem"))
        ids = {w: (secrets.token_bytes(8), secrets.token_bytes(8)) for w in WALLET_ORDER}
        device_id = "240ac4" + secrets.token_hex(3)
        secret = secrets.token_bytes(32)
        port = _free_port()
        meta.write_text(json.dumps({
            "keys": names, "device_id": device_id, "secret": secret.hex(), "depot_port": port,
            "ids": {w: (a.hex(), b.hex()) for w, (a, b) in ids.items()}}, indent=1))
        return cls(root, keys, ids, device_id, secret, port)

    # --- what is provisioned on the validator --------------------------------------------

    def operator_pub(self):
        return ht.public_bytes(self.keys["operator"])

    def config(self):
        return {"v": 1, "device_id": self.device_id, "operator": OPERATOR, "bus": "B-017",
                "route": "K1", "wifi": {"ssid": "depot", "psk": "depot-wifi-key"},
                "depot_url": "http://127.0.0.1:%d" % self.depot_port,
                "operator_key": self.operator_pub().hex(),
                "qr_window_s": 30, "passback_s": 60, "locked": False}

    def bundles(self, issued_at, deny_extra=()):
        op = self.keys["operator"]
        issuer_pub = ht.public_bytes(self.keys["issuer"])
        trust = hb.sign_bundle(hb.TRUST, 1, hb.trust_body(
            [(issuer_pub, issued_at - 365 * DAY, issued_at + 5 * 365 * DAY, hb.USAGE_PASS)]),
            op, issued_at)
        fares = hb.sign_bundle(hb.FARES, 1, hb.fares_body(FARES), op, issued_at)
        wid, pid = self.ids["revoked"]
        deny = hb.sign_bundle(hb.DENY, 1, hb.deny_body(
            [hb.deny_entry(b"W", wid)] + list(deny_extra)), op, issued_at)
        return {"trust.cose": trust, "fares.cose": fares, "deny.bin": deny}

    def data_files(self, issued_at):
        """{name under /data: bytes} - what provisioning would have written."""
        files = dict(self.bundles(issued_at))
        files["config.json"] = json.dumps(self.config()).encode()
        files["secret.bin"] = self.secret
        return files

    # --- the phone wallets --------------------------------------------------------------

    def _pass(self, name, now):
        wid, pid = self.ids[name]
        phone = self.keys["phone-" + name]
        issuer, category, operator = self.keys["issuer"], 0, OPERATOR
        iat, exp = now - DAY, now + 6 * DAY
        if name == "concession":
            category = 1
        elif name == "expired":
            iat, exp = now - 8 * DAY, now - DAY
        elif name == "forged":
            issuer = self.keys["forger"]
        elif name == "other-operator":
            operator = "XYZ"
        # the day's pass: minted once a day, as a wallet would refresh it, and then the same
        # bytes at every tap (so the validator's pass cache sees it again)
        iat -= iat % DAY
        key = (name, iat)
        if key in self.passes:
            return self.passes[key]
        p = ht.mint_pass(issuer, phone, wid, pid, category, 200000, iat, exp, operator=operator)
        if name == "forged":
            # a forger copies the real issuer's kid into its own pass: the kid resolves,
            # the signature does not verify
            p = _swap_kid(p, ht.kid(ht.public_bytes(self.keys["issuer"])))
        self.passes[key] = p
        return p

    def _counter(self, name):
        self.counters[name] = self.counters.get(name, 0) + 1
        return self.counters[name]

    def qr(self, name, now):
        """QR text the wallet shows at Unix time `now`."""
        if name == "garbage":
            return "HELLO-THIS-IS-NOT-A-TICKET"
        p = self._pass(name, now)
        t = now - 60 if name == "screenshot" else now
        proof = ht.make_proof(p, self.keys["phone-" + name], t, self._counter(name))
        return ht.qr_text(p, proof)

    def nfc_answer(self, name, challenge, now):
        """The phone's answer to the TAP command (before response chaining)."""
        if name == "garbage":
            return b"\x82\x01\x02garbage"
        p = self._pass(name, now)
        if name == "screenshot":
            # an NFC replay: a proof recorded at an earlier tap, for another challenge
            challenge = bytes(16)
            now -= 60
        proof = ht.make_proof(p, self.keys["phone-" + name], now, self._counter(name), challenge)
        return ht.nfc_payload(p, proof)


def _swap_kid(pass_bytes, kid):
    import cbor2
    prot_b, unprot, payload, sig = cbor2.loads(pass_bytes)
    prot = cbor2.loads(prot_b)
    prot[4] = kid
    return cbor2.dumps([cbor2.dumps(prot, canonical=True), unprot, payload, sig],
                       canonical=True)


def _free_port():
    # a port for this world's depot, chosen once: it is written into the validator's
    # config.json, so it must stay the same across runs
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def default_state_dir():
    return pathlib.Path(os.environ.get("BRT_SIM_STATE", "build/sim"))
