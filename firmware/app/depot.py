# The depot link, stepped from the tap loop: join the depot Wi-Fi when it is in range,
# then run sync sessions (sync.SyncClient: upload taps, fetch bundles, take the time) in
# small non-blocking steps between taps. Never blocks a rider: a step is one socket
# operation or one chunk, and the one slow step (a bundle's signature check, ~1 s on the
# ESP32) is allowed only when nobody is at the reader.
#
# While the bus stays in range it keeps syncing promptly (docs/sync-api.md 'Prompt sync'):
# a session starts UPLOAD_QUIET_MS after new taps were journaled (when the reader is
# idle), and at least every POLL_MS anyway - a hello is a cheap poll that brings a new
# bundle (a deny list revoking a wallet, say) and the time. A session never starts while a
# rider is at the reader.
#
# The sync client (and bundles.py under it, ~25 KB of bytecode) is imported when the
# depot is first seen and dropped when the bus leaves, so a bus on the road does not
# carry it in its heap.
import time

from micropython import const

JOIN_EVERY_MS = const(5000)      # how often to look for the depot's Wi-Fi
UPLOAD_QUIET_MS = const(2000)    # new taps go up once the reader was idle this long
POLL_MS = const(10000)           # parked in range: a session (cheap poll) at least this often
RETRY_IDLE_MS = const(30000)     # a session that keeps failing: give it a rest, then again
CHECK_MS = const(500)            # how often the loop looks at the journal for new taps
REFUSAL_JOURNAL_MS = const(3600000)  # the same refused time is journaled once an hour
LINK_TRIES = const(12)           # failed joins or attempts before trying the other link


class Depot:
    def __init__(self, cfg, secret, journal, data_dir, on_time, on_bundle, clock_source=None,
                 validator=None):
        self.cfg = cfg
        # the depot link(s): the config's, and config.json's own when a config bundle
        # changed it - a valid but wrong Wi-Fi name or URL in a bundle must not cut the bus
        # off its depot for good (docs/bundles.md 'Config ranges')
        self.links = [(cfg.wifi, cfg.depot_url)]
        if cfg.base_link is not None and cfg.base_link != self.links[0] and \
                cfg.base_link[0] and cfg.base_link[1]:
            self.links.append(cfg.base_link)
        self.link = 0
        self._tries = 0               # joins/sessions on this link since its last success
        self.secret = secret
        self.journal = journal
        self.data_dir = data_dir
        self.on_time = on_time
        self.on_bundle = on_bundle
        self.clock_source = clock_source   # () -> (unix s, trusted): the DS3231
        self.v = validator                 # faults shown on the screen (may be None)
        self.wlan = None
        self.client = None
        self.state = "off"            # off | joining | syncing | done | retrying | error
        self.last_error = None
        self._join_at = time.ticks_ms()
        self._done_at = None          # when the last session ended (None: none in range yet)
        self._seen_seq = -1           # the journal's last seq when that session started
        self._check_at = time.ticks_ms()
        self._link_at = time.ticks_ms()
        self._idle_since = time.ticks_ms()
        self.sessions = 0
        self.installed = []
        self.time_refusals = 0
        self._refusal = None          # (why, ticks ms) of the last refusal journaled

    def busy(self):
        """A session is under way (the loop reboots for new bundles only between them)."""
        return self.client is not None and self.client.active()

    def enabled(self):
        return bool(self.links[0][0] and self.links[0][1] and self.secret)

    def _failed_try(self):
        """One more join or session without success on this link; after LINK_TRIES of
        them the other link (if any) gets its turn."""
        self._tries += 1
        if self._tries >= LINK_TRIES and len(self.links) > 1:
            self._tries = 0
            self.link = (self.link + 1) % len(self.links)
            if self.client is not None:
                self.client.stop()
                self.client = None        # the next session talks to the other URL
            try:
                if self.wlan is not None:
                    self.wlan.disconnect()
            except (OSError, AttributeError):
                pass

    def _connected(self):
        try:
            if self.wlan is None:
                import network
                self.wlan = network.WLAN(network.STA_IF)
            return self.wlan.isconnected()
        except OSError:
            return False

    def step(self, now_ms, idle):
        """One small piece of depot work; `idle`: no rider at the reader right now."""
        if not self.enabled():
            return
        if not idle:
            self._idle_since = now_ms
        c = self.client
        if c is not None and c.active():
            self._step_sync(now_ms, idle)
            return
        if self._done_at is not None:      # in range, between sessions
            if time.ticks_diff(now_ms, self._link_at) >= 0:
                # the bus leaving is noticed within CHECK_MS (isconnected() is cheap)
                self._link_at = time.ticks_add(now_ms, CHECK_MS)
                if not self._connected():
                    self._leave()
                    return
            if idle and self._due(now_ms):
                self._start(now_ms)
            return
        if time.ticks_diff(now_ms, self._join_at) < 0:
            return
        self._join_at = time.ticks_add(now_ms, JOIN_EVERY_MS)
        if not self._connected():
            self._failed_try()
            w = self.wlan
            wifi = self.links[self.link][0]
            try:
                if w is None:
                    raise OSError("no WLAN interface")
                w.active(True)
                w.connect(wifi["ssid"], wifi.get("psk", ""))
                self.state = "joining"
            except OSError as e:
                self.state = "error"
                self.last_error = "wifi: %s" % e
            return
        if idle:
            self._start(now_ms)

    def _due(self, now_ms):
        """A new session is due: taps journaled since the last one (after a quiet spell at
        the reader), or POLL_MS since it ended (RETRY_IDLE_MS after a failed one)."""
        since = time.ticks_diff(now_ms, self._done_at)
        if since >= (POLL_MS if self.state == "done" else RETRY_IDLE_MS):
            return True
        if time.ticks_diff(now_ms, self._check_at) < 0:
            return False
        self._check_at = time.ticks_add(now_ms, CHECK_MS)
        if time.ticks_diff(now_ms, self._idle_since) < UPLOAD_QUIET_MS:
            return False
        return self._last_seq() != self._seen_seq

    def _last_seq(self):
        try:
            return self.journal.status().last_seq
        except Exception:  # noqa: BLE001 - a journal fault shows on the next append
            return self._seen_seq

    def _start(self, now_ms):
        if self.client is None:
            import gc
            gc.collect()   # compiling/loading the sync code wants a few KB in one piece
            from sync.client import SyncClient
            self.client = SyncClient(self.links[self.link][1], self.cfg.device_id, self.secret,
                                     self.journal, self.cfg.operator_key_bytes(),
                                     self.data_dir, on_time=self._time,
                                     on_bundle=self._bundle, clock=self.clock_source,
                                     on_time_refused=self._time_refused)
        self._seen_seq = self._last_seq()
        self.client.start(now_ms)
        self.sessions += 1
        self.state = "syncing"

    def _time(self, t):
        self.on_time(t)
        if self.v is not None and "time" in self.v.faults:
            self.v.clear("time")

    def _time_refused(self, offered, why):
        # a fault on the screen, an event record in the journal (so the back office sees
        # it too), and the client reports it to the depot before the session ends
        self.time_refusals += 1
        if self.v is not None:
            self.v.fault("time", "depot time %d refused: %s" % (offered, why))
        now_ms = time.ticks_ms()
        last = self._refusal
        if last is not None and last[0] == why and \
                time.ticks_diff(now_ms, last[1]) < REFUSAL_JOURNAL_MS:
            return          # parked at a lying depot: one event an hour, not one a poll
        self._refusal = (why, now_ms)
        try:
            from app import record
            now, ok = self.clock_source() if self.clock_source else (0, False)
            payload = record.RecordWriter().encode_event(
                now, record.CLOCK_TRUSTED if ok else record.CLOCK_UNTRUSTED,
                record.TIME_REFUSED, offered)
            self.journal.append(payload, now)
        except Exception as e:  # noqa: BLE001 - a full journal: the fault and report remain
            print("depot: time refusal not journaled:", e)

    def _bundle(self, kind, header):
        self.installed.append((kind, header.version))
        self.on_bundle(kind)

    def _step_sync(self, now_ms, idle):
        from sync import client as sc
        c = self.client
        if c is None:
            return
        cycles = c.cycles
        st = c.step(now_ms, allow_slow=idle)
        if st == sc.DONE:
            self.state = "done"
            self.last_error = None
            self._done_at = now_ms
            self._tries = 0
        elif st == sc.BACKOFF:
            self.state = "retrying"
            self.last_error = c.last_error
            if not self._connected():   # the bus left the depot: stop until next time
                c.stop()
                self._leave()
                return
            if c.cycles != cycles:      # one more failed attempt on this link
                self._failed_try()
                if self.client is None:  # switched to the other link: join it afresh
                    self._done_at = None
                    self.state = "joining"
                    return
            if c.backoff_ms >= sc.BACKOFF_MAX_MS:
                c.stop()                # keeps failing: rest, then a fresh session
                self._done_at = now_ms

    def _leave(self):
        """Out of range: drop the sync code (and its buffers) until the bus is back."""
        if self.client is not None:
            self.client.stop()
        self.client = None
        self._done_at = None
        self.state = "off"
        self._join_at = time.ticks_add(time.ticks_ms(), JOIN_EVERY_MS)
        import sys
        for n in ("sync.client", "sync.http", "sync.auth", "sync", "bundles", "hmac256"):
            if n in sys.modules:
                del sys.modules[n]
