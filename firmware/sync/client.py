# The validator's depot sync: upload unsent journal records, fetch newer signed bundles,
# take the depot's time — as a resumable state machine the app's loop steps between taps.
#
#   sync = SyncClient(cfg, secret, journal, on_time=set_clock)
#   sync.start(time.ticks_ms())            # e.g. when the depot Wi-Fi comes up
#   while ...: sync.step(time.ticks_ms())   # returns within one socket op + one chunk
#
# Upload: batches of journal records, HMAC-SHA256 under the device's sync key, each record
# tagged with its record key for the back office (sync/auth.py); the journal is
# acknowledged only up to what the depot answered (with a MAC) as durably stored, so a cut
# at any point loses nothing and a re-send is harmless (the depot is idempotent by device
# id + journal incarnation + sequence number). The depot's time is believed only when MAC'd
# over this hello's nonce and within sync/auth.judge's bounds. Download: each offered bundle streams through bundles.Installer (hash
# while reading, .tmp file, verify, rename). Any failure closes the connection and the
# session starts again after a backoff; what was acknowledged stays acknowledged.
import json
import os
import struct
import time

import binascii
import bundles
import clock
from micropython import const
from sync import auth
from sync.http import Exchange, SyncError, parse_url

# client states (also what step() returns)
IDLE = const(0)
HELLO = const(1)
UPLOAD = const(2)
FETCH = const(3)
INSTALL = const(4)
BACKOFF = const(5)
DONE = const(6)
REPORT = const(7)
NAMES = {IDLE: "idle", HELLO: "hello", UPLOAD: "upload", FETCH: "fetch", INSTALL: "install",
         BACKOFF: "backoff", DONE: "done", REPORT: "report"}
API = "/v2"  # docs/sync-api.md: the version of the API is in every path

BATCH_BYTES = const(2048)
BATCH_RECORDS = const(24)
REC_HEAD = const(10)  # seq u32, t u32, len u16 (then the payload and its 16-byte tag)
TIMEOUT_MS = const(8000)
BACKOFF_MIN_MS = const(500)
BACKOFF_MAX_MS = const(30000)
KINDS = (bundles.TRUST, bundles.DENY, bundles.FARES, bundles.CONFIG)


class SyncClient:
    """Depot sync for one validator. No I/O until start(); step() never blocks."""

    def __init__(self, depot_url, device_id, secret, journal, operator_key, data_dir="/data",
                 verify=None, on_time=None, on_bundle=None, unix_now=clock.unix_now,
                 batch_records=BATCH_RECORDS, batch_bytes=BATCH_BYTES, timeout_ms=TIMEOUT_MS,
                 ticks_diff=time.ticks_diff, clock=None, on_time_refused=None):
        self.url = depot_url
        self.device_id = device_id
        self.clock = clock            # () -> (unix s, trusted): the clock the time is judged by
        self.on_time_refused = on_time_refused  # (offered, why): a fault to show and journal
        self.time_refused = None      # (offered, device time, why) of this session, reported
        self._nonce = b""
        self._req_mac = b""
        self.journal = journal
        self.operator_key = operator_key
        self.data_dir = data_dir
        self.verify = verify
        self.on_time = on_time
        self.on_bundle = on_bundle
        self.unix_now = unix_now
        self.batch_records = batch_records
        self.ticks_diff = ticks_diff
        self.timeout_ms = timeout_ms
        dev = device_id.encode()
        self._prefix = 10 + len(dev)  # magic, format, id length, id, incarnation
        self.bbuf = bytearray(self._prefix + 6 + batch_bytes)
        self.bbuf[0:4] = b"BRTU"
        self.bbuf[4] = 2
        self.bbuf[5] = len(dev)
        self.bbuf[6:6 + len(dev)] = dev
        # the secret itself never goes on the wire: derived keys (sync/auth.py); after the
        # batch buffer, which needs one 2 KB hole
        self.keys = auth.Keys(secret, device_id)
        self.key = self.keys.sync
        self.batch_bytes = batch_bytes
        self.http = Exchange()
        self.state = IDLE
        self.addr = None
        self.offers = []
        self.inst = None
        self._inst_for = None
        self._batch_n = 0
        self._batch_len = 0
        self._next = None       # a piece of work for the next step
        self.backoff_ms = BACKOFF_MIN_MS
        self.retry_at = 0
        self.last_error = None
        self.errors = []        # (kind, version, reason) of bundles refused this session,
                                # sent in its report before it ends (_send_report)
        self.sent_last = -1     # last seq of the batch in flight
        self.acked = -1         # highest seq the depot acknowledged (this boot)
        self.uploaded = 0       # records acknowledged (this boot)
        self.installed = []     # (kind, version) installed (this boot)
        self.sessions = 0
        self.cycles = 0         # failed attempts (cuts, timeouts, refusals)

    # --- public ---------------------------------------------------------------------------
    def start(self, now_ms):
        """Begin a sync session now (no-op if one is running)."""
        if self.state in (IDLE, DONE):
            self.errors = []
            self.time_refused = None
            self.sessions += 1
            self._hello(now_ms)

    def active(self):
        return self.state not in (IDLE, DONE)

    def stop(self):
        self._next = None
        self.http.close()
        if self.inst is not None:
            self.inst.abort()
            self.inst = None
        self.state = IDLE

    def step(self, now_ms, allow_slow=True):
        """Do one small piece of work; returns the state. `allow_slow=False` defers the
        one long step (the ES256 check of a downloaded bundle, ~1 s on the ESP32) to a
        call where the app has no rider at the reader."""
        st = self.state
        if st in (IDLE, DONE):
            return st
        if st == BACKOFF:
            if self.ticks_diff(now_ms, self.retry_at) >= 0:
                self._hello(now_ms)
            return self.state
        if st == INSTALL:
            if allow_slow:
                self._install(now_ms)
            return self.state
        try:
            if self._next is not None:  # work split off the previous step to keep each short
                fn = self._next
                self._next = None
                fn(now_ms)
                return self.state
            try:
                if self.http.step(now_ms, self.ticks_diff):
                    self._answer(now_ms)
            except bundles.BundleError as e:  # refused while streaming (stale, too large ...)
                self.http.close()
                self._refused(e)
                self._next_fetch(now_ms)
        except SyncError as e:
            self._failed(now_ms, e.reason, e.detail)
        return self.state

    # --- steps ----------------------------------------------------------------------------
    def _request(self, now_ms, method, path, body=None, sink=None, mac=True):
        if self.addr is None:
            import socket
            host, port = parse_url(self.url)
            try:  # an IP literal (the depot's address) resolves without a DNS query
                self.addr = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)[0][-1]
            except OSError as e:
                raise SyncError("connect", "resolve %s" % e)
        extra = ""
        if body is not None:
            extra = "Content-Type: application/octet-stream\r\nContent-Length: %d\r\n" % len(body)
            if mac:
                self._req_mac = self.key.mac(body)
                extra += "X-BRT-MAC: %s\r\n" % binascii.hexlify(self._req_mac).decode()
        if sink is not None and sink.pos:  # resume a cut download where it stopped
            extra += "Range: bytes=%d-\r\n" % sink.pos
        head = ("%s %s HTTP/1.1\r\nHost: depot\r\n%sConnection: close\r\n\r\n"
                % (method, path, extra)).encode()
        # ticks_add: ticks wrap at 2**30 on the ESP32 (a plain + breaks the deadline there)
        self.http.begin(self.addr, head, body, sink, now_ms,
                        time.ticks_add(now_ms, self.timeout_ms))

    def _hello(self, now_ms):
        have = {}
        for k in KINDS:
            have[str(k)] = bundles.installed_version(self.data_dir, k)
        try:  # for the depot's status page: taps still on this validator
            js = self.journal.status()
            unsent, inc, last = js.unsent, js.incarnation, js.last_seq
        except (AttributeError, OSError):
            unsent, inc, last = 0, 0, 0
        now, trusted = self._clock()
        # a fresh nonce per hello: the depot's time is believed only if MAC'd over it
        self._nonce = os.urandom(16)
        body = json.dumps({"v": 2, "nonce": binascii.hexlify(self._nonce).decode(),
                           "time": now, "trusted": trusted, "inc": inc, "last_seq": last,
                           "have": have, "unsent": unsent}).encode()
        self.state = HELLO
        try:
            self._request(now_ms, "POST", API + "/sync/%s/hello" % self.device_id, body)
        except SyncError as e:
            self._failed(now_ms, e.reason, e.detail)

    def _json(self):
        try:
            msg = json.loads(self.http.text())
        except ValueError:
            raise SyncError("protocol", "JSON body")
        if not isinstance(msg, dict):
            raise SyncError("protocol", "JSON body not an object")
        return msg

    def _offers(self, offers):
        # what the depot offers is checked like any other input: a malformed list is a
        # protocol error, and a path goes into a request line only if it is the plain form
        if not isinstance(offers, list):
            raise SyncError("protocol", "bundles")
        out = []
        for o in offers:
            if not isinstance(o, dict):
                raise SyncError("protocol", "bundle offer")
            k = o.get("kind")
            v = o.get("version")
            p = o.get("path")
            if k not in KINDS or not isinstance(v, int) or not isinstance(p, str):
                continue
            if len(p) > 48 or not p.startswith(API + "/bundles/") or \
                    not p[12:].replace("/", "").isdigit():
                raise SyncError("protocol", "bundle path")
            out.append((k, v, p))
        return out

    def _answer(self, now_ms):
        h = self.http
        if self.state == FETCH:
            if h.status in (200, 206):
                self.state = INSTALL
                return
            self._refused(bundles.BundleError("http_%d" % h.status))
            self._next_fetch(now_ms)
            return
        if h.status != 200:
            detail = ""
            try:
                detail = self._json().get("error", "")
            except SyncError:
                pass
            raise SyncError("http_%d" % h.status, detail)
        msg = self._json()
        if self.state == REPORT:
            self._done()
            return
        if self.state == HELLO:
            self._take_time(msg.get("time"), msg.get("time_mac"))
            self.offers = self._offers(msg.get("bundles", []))
            self.state = UPLOAD
            self.sent_last = -1
            self._next = self._upload  # next step: read the first batch
        elif self.state == UPLOAD:
            acked = msg.get("acked")
            if acked != self.sent_last:  # the depot must acknowledge exactly what we sent
                raise SyncError("protocol", "acked %s, sent up to %d" % (acked, self.sent_last))
            # only the depot holding our sync key can make taps leave the journal
            if not self.keys.ack_ok(self._req_mac, acked, msg.get("ack_mac")):
                raise SyncError("bad_ack", "acknowledgement not MAC'd by the depot")
            self.journal.ack(acked)
            self.acked = acked
            self.uploaded += self._batch_n
            self.backoff_ms = BACKOFF_MIN_MS  # progress: the next failure retries quickly
            self._next = self._upload

    def _upload(self, now_ms):
        recs = self.journal.unsent(self.batch_records, self.batch_bytes)
        if not recs:
            self._next_fetch(now_ms)
            return
        b = self.bbuf
        i = self._prefix + 6
        n = 0
        inc = self.journal.status().incarnation
        struct.pack_into(">I", b, self._prefix - 4, inc)
        for seq, t, payload in recs:
            ln = len(payload)
            if i + REC_HEAD + ln + auth.TAG_LEN > len(b):
                break
            struct.pack_into(">IIH", b, i, seq, t, ln)
            b[i + REC_HEAD:i + REC_HEAD + ln] = payload
            # the back office's proof that this record is this validator's, unaltered
            self.keys.tag_into(b, i + REC_HEAD + ln, inc, seq, t, payload)
            i += REC_HEAD + ln + auth.TAG_LEN
            n += 1
            self.sent_last = seq
        if n == 0:
            self._failed(now_ms, "protocol", "record larger than a batch")
            return
        struct.pack_into(">IH", b, self._prefix, self.unix_now() & 0xFFFFFFFF, n)
        self._batch_n = n
        self._batch_len = i
        self._next = self._send_batch  # the MAC and connect in a step of their own

    def _send_batch(self, now_ms):
        self._request(now_ms, "POST", API + "/sync/%s/batch" % self.device_id,
                      memoryview(self.bbuf)[:self._batch_len])

    def _next_fetch(self, now_ms):
        if not self.offers:
            if self.inst is not None:
                self.inst.abort()
                self.inst = None
            if self.errors or self.time_refused:
                self._send_report(now_ms)
                return
            self._done()
            return
        kind, version, path = self.offers[0]
        if self.inst is not None and self._inst_for != (kind, version):
            self.inst.abort()
            self.inst = None
        if self.inst is None:
            self.inst = bundles.Installer(self.data_dir, self.operator_key, self.verify, kind)
            self._inst_for = (kind, version)
        self.state = FETCH
        self._request(now_ms, "GET", path, sink=self.inst)

    def _install(self, now_ms):
        kind = self.offers[0][0]
        inst = self.inst
        self.inst = None
        try:
            if inst is None:
                raise bundles.BundleError(bundles.TRUNCATED)
            h = inst.finish()
            self.installed.append((h.kind, h.version))
            if self.on_bundle is not None:
                self.on_bundle(h.kind, h)
        except bundles.BundleError as e:
            self.errors.append((kind, self.offers[0][1], e.reason))
        self.offers.pop(0)
        try:
            self._next_fetch(now_ms)
        except SyncError as e:
            self._failed(now_ms, e.reason, e.detail)

    def _refused(self, e):
        kind = self.offers[0][0]
        self.errors.append((kind, self.offers[0][1], e.reason))
        self.offers.pop(0)
        if self.inst is not None:
            self.inst.abort()
            self.inst = None

    def _failed(self, now_ms, reason, detail):
        self._next = None
        self.http.close()
        self.cycles += 1
        self.last_error = reason + (": " + detail if detail else "")
        if self.state != FETCH and self.inst is not None:
            self.inst.abort()
            self.inst = None
        # a cut download keeps its Installer (hash state + .tmp file) and resumes with Range
        self.state = BACKOFF
        self.retry_at = time.ticks_add(now_ms, self.backoff_ms)
        self.backoff_ms = min(self.backoff_ms * 2, BACKOFF_MAX_MS)

    # --- trust: time and reports (docs/sync-api.md 'Time', 'Reports') ----------------------
    def _clock(self):
        if self.clock is None:  # no RTC given: the port's clock, trusted if plausible
            t = self.unix_now()
            return t, clock.plausible(t)
        try:
            t, ok = self.clock()
        except Exception:  # noqa: BLE001 - an RTC fault: judge as an untrusted clock
            return self.unix_now(), False
        return t, bool(ok)

    def _take_time(self, t, mac_hex):
        if not isinstance(t, int) or t < 0 or t > 0xFFFFFFFF:
            why = auth.BAD_MAC
            t = 0
        elif not self.keys.time_ok(self._nonce, t, mac_hex):
            why = auth.BAD_MAC  # a fake access point, or an answer to another hello
        else:
            now, trusted = self._clock()
            try:
                floor = self.journal.status().last_t
            except (AttributeError, OSError):
                floor = 0
            why = auth.judge(t, now, trusted, floor, clock.plausible)
        self._nonce = b""  # one answer per nonce
        if why is None:
            if self.on_time is not None:
                self.on_time(t)
            return
        self.time_refused = (t, self._clock()[0], why)
        if self.on_time_refused is not None:
            self.on_time_refused(t, why)

    def _send_report(self, now_ms):
        # refused bundles and a refused time, sent before the session ends so the depot
        # shows them whatever happens to this validator next (reboot, leaving range)
        tr = self.time_refused
        body = json.dumps({"refused": [list(e) for e in self.errors],
                           "time": None if tr is None else
                           {"offered": tr[0], "device": tr[1], "why": tr[2]}}).encode()
        self.state = REPORT
        self._request(now_ms, "POST", API + "/sync/%s/report" % self.device_id, body)

    def _done(self):
        self.state = DONE
        self.backoff_ms = BACKOFF_MIN_MS
