"""Depot -> back office: uploads outbox batches with retries, exponential backoff (with
jitter, capped) and an idempotency key per batch; pulls signed deny-list deltas, merges
them into the full list and signs it as the bundle validators download.

`Uplink.run_once(now)` does one round (deterministic, for tests and the CLI); `start()`
runs rounds in a thread. Time is injected so tests can pass a simulated week.
"""

import http.client
import json
import random
import threading
import time
import urllib.error
import urllib.request

from host import bundles as hb
from host.depot import wire

BACKOFF_BASE_S = 5.0
BACKOFF_MAX_S = 3600.0


def backoff(attempts, rnd=random.random):
    """Seconds before retry number `attempts` (1, 2, …): 5 s doubling to an hour, ±20 %."""
    return min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** min(attempts - 1, 20)) * (0.8 + 0.4 * rnd())


class Uplink:
    def __init__(self, store, backoffice_url, secret, operator_key=None, clock=time.time,
                 timeout=10.0, batch_taps=500):
        self.store = store
        self.url = backoffice_url.rstrip("/")
        self.secret = bytes(secret)
        self.operator_key = operator_key  # private key: sign merged deny lists
        self.clock = clock
        self.timeout = timeout
        self.batch_taps = batch_taps
        self._stop = threading.Event()
        self._thread = None
        self.last_error = None

    def _post(self, path, body, headers):
        req = urllib.request.Request(self.url + path, data=body, method="POST",
                                     headers=dict(headers, **{"Content-Type": "application/json"}))
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:  # the back office's reason, for the status page
            try:
                why = json.loads(e.read())
                detail = "%s: %s" % (why.get("error"), why.get("detail"))
            except (ValueError, OSError, AttributeError):
                detail = str(e)
            raise OSError("HTTP %d %s" % (e.code, detail)) from None

    def send_one(self, now):
        """Try the oldest due batch; returns 'sent', 'failed' or None (nothing due)."""
        got = self.store.next_batch(now)
        if got is None:
            return None
        bid, key, taps = got
        depot = self.store.meta("depot_id")
        # each tap goes with the validator's own tag: the back office checks it with the
        # validator's record key, which this depot does not have
        body = json.dumps({"depot": depot, "batch": key,
                           "taps": [[d, i, s, t, p.hex(), g.hex()]
                                    for d, i, s, t, p, g in taps]}).encode()
        try:
            ans = self._post("/v2/batches", body, {"X-BRT-Depot": depot, "Idempotency-Key": key,
                                                   "X-BRT-MAC": wire.mac(self.secret, body)})
            if ans.get("taps") != len(taps):
                raise ValueError("back office counted %s of %d" % (ans.get("taps"), len(taps)))
        except (OSError, ValueError, urllib.error.URLError, http.client.HTTPException) as e:
            # HTTPException: an answer cut after its head (IncompleteRead): not delivered
            attempts = self._attempts(bid) + 1
            self.last_error = "%s: %s" % (type(e).__name__, e)
            self.store.failed(bid, self.last_error, now + backoff(attempts))
            return "failed"
        self.store.delivered(bid)
        return "sent"

    def _attempts(self, bid):
        r = self.store._db().execute("SELECT attempts FROM outbox WHERE id=?", (bid,)).fetchone()
        return r[0] if r else 0

    def run_once(self, now=None, max_batches=100):
        """Pack new taps, send what is due until one fails; returns batches sent."""
        now = self.clock() if now is None else now
        self.store.pack(self.batch_taps, now)
        sent = 0
        for _ in range(max_batches):
            r = self.send_one(now)
            if r != "sent":
                break
            sent += 1
        return sent

    # --- deny deltas ----------------------------------------------------------------------
    def pull_deny(self, operator_pub):
        """Fetch deltas after our version, verify, merge, sign the full list; new version."""
        have = int(self.store.meta("deny_version", "0"))
        try:
            with urllib.request.urlopen("%s/v2/deny/deltas?since=%d" % (self.url, have),
                                        timeout=self.timeout) as r:
                msg = json.loads(r.read())
        except (OSError, ValueError, urllib.error.URLError, http.client.HTTPException) as e:
            self.last_error = "deny: %s" % e
            return None
        entries = set(bytes.fromhex(self.store.meta("deny_entries", "")[i:i + 16])
                      for i in range(0, len(self.store.meta("deny_entries", "")), 16))
        changed = False
        for raw in msg.get("deltas", []):
            try:  # a forged or broken delta stops the merge there; the good ones stand
                d = hb.parse_bundle(bytes.fromhex(raw), operator_pub, expect_kind=hb.DENY_DELTA)
                entries = hb.merge_delta(entries, have, d)
            except (hb.BundleError, ValueError, TypeError) as e:
                self.last_error = "deny delta after version %d refused: %s" % (have, e)
                break
            have = d.version
            changed = True
        if not changed:
            return None
        if self.operator_key is not None:
            body = hb.deny_body(entries)
            self.store.add_bundle(hb.DENY, have, hb.sign_bundle(hb.DENY, have, body,
                                                                self.operator_key))
        self.store.set_meta("deny_entries", b"".join(sorted(entries)).hex())
        self.store.set_meta("deny_version", have)
        return have

    # --- thread ---------------------------------------------------------------------------
    def start(self, interval=2.0, operator_pub=None):
        def loop():
            while not self._stop.is_set():
                try:
                    self.run_once()
                    if operator_pub is not None:
                        self.pull_deny(operator_pub)
                except Exception as e:  # noqa: BLE001 - keep the uplink alive; shown on status
                    self.last_error = "%s: %s" % (type(e).__name__, e)
                self._stop.wait(interval)
        self._thread = threading.Thread(target=loop, daemon=True, name="depot-uplink")
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
