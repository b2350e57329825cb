"""The depot's HTTP service (docs/sync-api.md), on the standard library's threading server.

Validators talk plain HTTP/1.1 with `Connection: close` (one exchange per connection keeps
the firmware client's state machine small). Every answer is JSON except bundle downloads
and the status page. A batch is acknowledged only after its transaction committed.
"""

import html
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler

from host.depot import wire
from host.depot.errors import DepotError
from host.depot.store import DepotStore
from host.httpservice import HTTPService

MAX_HELLO = 4096
_DEV = r"([!-.0-~]{1,64})"  # printable ASCII without '/' or space
ROUTES = [
    ("POST", re.compile(r"^/v1/sync/%s/batch$" % _DEV), "batch"),
    ("POST", re.compile(r"^/v1/sync/%s/hello$" % _DEV), "hello"),
    ("GET", re.compile(r"^/v1/bundles/(\d{1,3})/(\d{1,10})$"), "bundle"),
    ("GET", re.compile(r"^/v1/time$"), "time"),
    ("GET", re.compile(r"^/v1/status$"), "status"),
    ("GET", re.compile(r"^/$"), "page"),
]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 15  # a stalled client cannot hold a thread for ever
    server_version = "brt-depot/1"

    def log_message(self, fmt, *args):  # quiet: the status page and store tell the story
        pass

    def _route(self, method):
        path = self.path.split("?", 1)[0]
        for m, rx, name in ROUTES:
            if m != method:
                continue
            mt = rx.match(path)
            if mt:
                return getattr(self, "do_" + name), mt.groups()
        return None, ()

    def _dispatch(self, method):
        app = self.server.app
        self.close_connection = True  # one exchange per connection (docs/sync-api.md)
        fn, args = self._route(method)
        try:
            if fn is None:
                raise DepotError("not_found", self.path, 404)
            fn(app, *args)
        except DepotError as e:
            app.count("error_" + e.reason)
            self._json(e.status, {"error": e.reason, "detail": e.detail})
        except (ConnectionError, TimeoutError):
            pass  # the client went away; nothing was acknowledged
        except Exception as e:  # noqa: BLE001 - the service keeps running; the client retries
            app.count("error_internal")
            self._json(500, {"error": "internal", "detail": type(e).__name__})

    def do_POST(self):  # noqa: N802 - http.server naming
        self._dispatch("POST")

    def do_GET(self):  # noqa: N802
        self._dispatch("GET")

    # --- helpers --------------------------------------------------------------------------
    def _body(self, limit):
        try:
            n = int(self.headers.get("Content-Length", ""))
        except ValueError:
            raise DepotError("malformed", "Content-Length required", 411) from None
        if n < 0 or n > limit:
            raise DepotError("too_large", "%d bytes" % n, 413)
        data = self.rfile.read(n)
        if len(data) != n:  # cut mid-upload: nothing is stored, nothing acknowledged
            raise ConnectionError("short body")
        return data

    def _send(self, code, ctype, data, extra=()):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    def _json(self, code, obj):
        try:
            self._send(code, "application/json", json.dumps(obj).encode())
        except (ConnectionError, TimeoutError):
            pass

    def _authed(self, app, device_id, body):
        secret = app.store.secret(device_id)
        if secret is None:
            raise DepotError("unknown_device", device_id, 404)
        if not wire.check_mac(secret, body, self.headers.get("X-BRT-MAC")):
            raise DepotError("bad_mac", device_id, 401)

    # --- endpoints ------------------------------------------------------------------------
    def do_batch(self, app, device_id):
        body = self._body(wire.MAX_BODY)
        self._authed(app, device_id, body)
        dev, _dtime, recs = wire.decode_batch(body)
        if dev != device_id:
            raise DepotError("malformed", "device id in body differs from the URL")
        new, dup = app.store.ingest(device_id, recs)  # committed when this returns
        app.count("taps_new", new)
        app.count("taps_dup", dup)
        app.fault("after_commit", device_id)
        self._json(200, {"acked": recs[-1][0], "stored": new, "duplicates": dup,
                         "time": int(app.clock())})

    def do_hello(self, app, device_id):
        body = self._body(MAX_HELLO)
        self._authed(app, device_id, body)
        try:
            h = json.loads(body)
            have = {int(k): _u32(v) for k, v in h.get("have", {}).items()}
            unsent = _u32(h.get("unsent", 0))
            dtime = _u32(h.get("time", 0))
            err = h.get("error")
            if err is not None and (not isinstance(err, str) or len(err) > 500):
                raise TypeError
        except (ValueError, TypeError, AttributeError):
            raise DepotError("malformed", "hello body") from None
        app.store.hello(device_id, dtime, unsent, have, err)
        offers = []
        for kind, (version, size) in sorted(app.store.latest_bundles().items()):
            if kind in (1, 2, 3, 4) and version > have.get(kind, 0):
                offers.append({"kind": kind, "version": version, "size": size,
                               "path": "/v1/bundles/%d/%d" % (kind, version)})
        self._json(200, {"time": int(app.clock()), "bundles": offers})

    def do_bundle(self, app, kind, version):
        data = app.store.bundle(int(kind), int(version))
        if data is None:
            raise DepotError("not_found", "bundle %s/%s" % (kind, version), 404)
        start = 0
        rng = self.headers.get("Range")
        if rng:  # resume a cut download: "bytes=N-"
            m = re.match(r"^bytes=(\d{1,10})-$", rng.strip())
            if not m or int(m.group(1)) > len(data):
                raise DepotError("bad_range", rng, 416)
            start = int(m.group(1))
        app.count("bundle_bytes", len(data) - start)
        extra = [("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))] \
            if rng else []
        try:
            self._send(206 if rng else 200, "application/octet-stream", data[start:], extra)
        except (ConnectionError, TimeoutError):
            pass

    def do_time(self, app):
        self._json(200, {"time": int(app.clock())})

    def do_status(self, app):
        self._json(200, app.status())

    def do_page(self, app):
        self._send(200, "text/html; charset=utf-8", status_page(app.status()).encode())


def _u32(v):
    """An unsigned 32-bit integer from JSON (bool and float refused), else ValueError."""
    if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 2 ** 32:
        raise ValueError("not a u32")
    return v


class DepotApp:
    """The service: store + counters + (optional) fault hooks used by the tests."""

    def __init__(self, store, clock=time.time, outbox=None):
        self.store = store
        self.clock = clock
        self.outbox = outbox
        self.counters = {}
        self.faults = {}
        self._lock = threading.Lock()

    def count(self, name, n=1):
        with self._lock:
            self.counters[name] = self.counters.get(name, 0) + n

    def fault(self, point, device_id):
        """Test hook: a callable registered for `point` may raise to cut the connection."""
        hook = self.faults.get(point)
        if hook is not None:
            hook(device_id)

    def status(self):
        return {"depot_id": self.store.meta("depot_id"), "time": int(self.clock()),
                "devices": self.store.devices(),
                "gaps": [list(g) for g in self.store.gaps()],
                "conflicts": [[d, s, t] for d, s, t, _p in self.store.conflicts()],
                "outbox": self.store.outbox_status(),
                "bundles": {str(k): v[0] for k, v in self.store.latest_bundles().items()},
                "counters": dict(self.counters)}


class DepotServer(HTTPService):
    """`DepotServer(store, host, port).start()`; `.url`; `.stop()`. Port 0 = ephemeral."""

    thread_name = "depot-http"

    def __init__(self, store, host="127.0.0.1", port=0, clock=time.time, outbox=None):
        super().__init__(_Handler, host, port)
        self.app = DepotApp(store, clock, outbox)

    def _attach(self, httpd):
        httpd.app = self.app


def _ts(t):
    return "-" if t is None else time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))


def status_page(st):
    """The small HTML status page: devices, last sync, pending taps and batches, gaps."""
    e = html.escape
    rows = "".join(
        "<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td>"
        "<td>%s</td></tr>"
        % (e(d["device_id"]), _ts(d["last_seen"]), _ts(d["last_upload"]), d["taps"],
           "-" if d["max_seq"] is None else d["max_seq"],
           "-" if d["unsent_on_device"] is None else d["unsent_on_device"],
           "-" if d["skew_s"] is None else d["skew_s"], e(d["last_error"] or "-"))
        for d in st["devices"])
    gaps = "".join("<li>%s: seq %d&ndash;%d missing</li>" % (e(g[0]), g[1], g[2])
                   for g in st["gaps"]) or "<li>none</li>"
    conf = "".join("<li>%s: seq %d</li>" % (e(c[0]), c[1]) for c in st.get("conflicts", [])) \
        or "<li>none</li>"
    ob = st["outbox"]
    return """<!doctype html><html><head><meta charset="utf-8"><title>Depot %s</title>
<meta http-equiv="refresh" content="10"></head><body>
<h1>Depot %s</h1><p>time %s (UTC)</p>
<h2>Back office uplink</h2><p>pending: %d batches, %d taps (oldest %s); delivered: %d batches,
%d taps; most attempts %d; last error: %s</p>
<h2>Validators</h2><table border="1" cellpadding="3"><tr><th>device</th><th>last seen</th>
<th>last upload</th><th>taps stored</th><th>last seq</th><th>unsent on device</th>
<th>clock skew s</th><th>bundles refused</th></tr>%s</table>
<h2>Sequence gaps</h2><ul>%s</ul>
<h2>Conflicts (same seq, different record: kept, not uploaded)</h2><ul>%s</ul>
<h2>Bundles</h2><p>%s</p></body></html>
""" % (e(st["depot_id"]), e(st["depot_id"]), _ts(st["time"]), ob["pending_batches"],
       ob["pending_taps"], _ts(ob["oldest_pending"]), ob["delivered_batches"],
       ob["delivered_taps"], ob["max_attempts"], e(str(ob["last_error"] or "-")), rows, gaps,
       conf,
       e(", ".join("kind %s v%s" % kv for kv in sorted(st["bundles"].items())) or "none"))


def open_store(path):
    return DepotStore(path).open()
