# The depot link, stepped from the tap loop: join the depot Wi-Fi when it is in range,
# then run a sync session (sync.SyncClient: upload taps, fetch bundles, take the time) in
# small non-blocking steps between taps. Never blocks a rider: a step is one socket
# operation or one chunk, and the one slow step (a bundle's signature check, ~1 s on the
# ESP32) is allowed only when nobody is at the reader.
#
# The sync client (and bundles.py under it, ~25 KB of bytecode) is imported when the
# depot is first seen and dropped after the session, so a bus on the road does not carry
# it in its heap.
import time

from micropython import const

JOIN_EVERY_MS = const(5000)      # how often to look for the depot's Wi-Fi
RESYNC_MS = const(300000)        # a bus parked at the depot syncs again every 5 minutes


class Depot:
    def __init__(self, cfg, secret, journal, data_dir, on_time, on_bundle):
        self.cfg = cfg
        self.secret = secret
        self.journal = journal
        self.data_dir = data_dir
        self.on_time = on_time
        self.on_bundle = on_bundle
        self.wlan = None
        self.client = None
        self.state = "off"            # off | joining | syncing | done | error
        self.last_error = None
        self._join_at = time.ticks_ms()
        self._done_at = None
        self.sessions = 0
        self.installed = []

    def enabled(self):
        return bool(self.cfg.wifi and self.cfg.depot_url and self.secret)

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
        if self.client is not None:
            self._step_sync(now_ms, idle)
            return
        if time.ticks_diff(now_ms, self._join_at) < 0:
            return
        self._join_at = time.ticks_add(now_ms, JOIN_EVERY_MS)
        if not self._connected():
            # out of the depot's range: the next time the bus is back, sync at once
            self._done_at = None
            w = self.wlan
            try:
                if w is None:
                    raise OSError("no WLAN interface")
                w.active(True)
                w.connect(self.cfg.wifi["ssid"], self.cfg.wifi.get("psk", ""))
                self.state = "joining"
            except OSError as e:
                self.state = "error"
                self.last_error = "wifi: %s" % e
            return
        if self._done_at is not None and time.ticks_diff(now_ms, self._done_at) < RESYNC_MS:
            return
        self._start(now_ms)

    def _start(self, now_ms):
        from sync.client import SyncClient
        self.client = SyncClient(self.cfg.depot_url, self.cfg.device_id, self.secret,
                                 self.journal, self.cfg.operator_key_bytes(), self.data_dir,
                                 on_time=self.on_time, on_bundle=self._bundle)
        self.client.start(now_ms)
        self.sessions += 1
        self.state = "syncing"

    def _bundle(self, kind, header):
        self.installed.append((kind, header.version))
        self.on_bundle(kind)

    def _step_sync(self, now_ms, idle):
        from sync import client as sc
        c = self.client
        if c is None:
            return
        st = c.step(now_ms, allow_slow=idle)
        if st == sc.DONE:
            self.state = "done"
            self.last_error = None
            self._finish(now_ms)
        elif st == sc.BACKOFF:
            self.state = "retrying"
            self.last_error = c.last_error
            if not self._connected():   # the bus left the depot: stop until next time
                c.stop()
                self._finish(None)
                self.state = "off"

    def _finish(self, now_ms):
        self.client = None
        self._done_at = now_ms
        self._join_at = time.ticks_add(time.ticks_ms(), JOIN_EVERY_MS)
        import sys
        for n in ("sync.client", "sync.http", "sync", "bundles", "hmac256"):
            if n in sys.modules:
                del sys.modules[n]
