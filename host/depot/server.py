"""The depot's HTTP service (docs/sync-api.md, API version 2), on the standard library's
threading server.

Validators talk plain HTTP/1.1 with `Connection: close` (one exchange per connection keeps
the firmware client's state machine small). Every answer is JSON except bundle downloads
and the status page. A batch is acknowledged only after its transaction committed, and the
acknowledgement and the time are MAC'd with the device's sync key (a fake access point
can neither make a validator drop taps nor set its clock). A client of API version 1 gets
`426 api_version` on every path, never a half-understood answer.
"""

import html
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler

from host import synckeys
from host.depot import wire
from host.depot.errors import DepotError
from host.depot.store import DepotStore
from host.httpservice import HTTPService

MAX_HELLO = 4096
API = 2
_DEV = r"([!-.0-~]{1,64})"  # printable ASCII without '/' or space
ROUTES = [
    ("POST", re.compile(r"^/v2/sync/%s/batch$" % _DEV), "batch"),
    ("POST", re.compile(r"^/v2/sync/%s/hello$" % _DEV), "hello"),
    ("POST", re.compile(r"^/v2/sync/%s/report$" % _DEV), "report"),
    ("GET", re.compile(r"^/v2/bundles/(\d{1,3})/(\d{1,10})$"), "bundle"),
    ("GET", re.compile(r"^/v2/time$"), "time"),
    ("GET", re.compile(r"^/v2/status$"), "status"),
    ("GET", re.compile(r"^/$"), "page"),
    ("*", re.compile(r"^/v1/(?:sync/%s/)?" % _DEV), "old"),
]
OLD_API = ("this depot speaks sync API version %d (docs/sync-api.md): update the validator "
           "firmware" % API)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 15  # a stalled client cannot hold a thread for ever
    server_version = "brt-depot/1"

    def log_message(self, fmt, *args):  # quiet: the status page and store tell the story
        pass

    def _route(self, method):
        path = self.path.split("?", 1)[0]
        for m, rx, name in ROUTES:
            if m != method and m != "*":
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
        """The device's sync key, once the body's MAC checked under it."""
        key = app.store.sync_key(device_id)
        if key is None:
            raise DepotError("unknown_device", device_id, 404)
        if not wire.check_mac(key, body, self.headers.get("X-BRT-MAC")):
            raise DepotError("bad_mac", device_id, 401)
        return key

    # --- endpoints ------------------------------------------------------------------------
    def do_old(self, app, device_id=None):
        # an old client: a clear refusal, never an answer it could half-understand
        app.count("old_client")
        if device_id and app.store.sync_key(device_id) is not None:
            app.store.old_client(device_id, self.path.split("/")[1])
        raise DepotError("api_version", OLD_API, 426)

    def do_batch(self, app, device_id):
        body = self._body(wire.MAX_BODY)
        key = self._authed(app, device_id, body)
        dev, inc, _dtime, recs = wire.decode_batch(body)
        if dev != device_id:
            raise DepotError("malformed", "device id in body differs from the URL")
        new, dup, conf = app.store.ingest(device_id, recs, inc)  # committed when this returns
        app.count("taps_new", new)
        app.count("taps_dup", dup)
        app.count("taps_conflict", conf)
        app.fault("after_commit", device_id)
        acked = recs[-1][0]
        self._json(200, {"acked": acked, "stored": new, "duplicates": dup, "conflicts": conf,
                         "time": int(app.clock()), "ack_mac": synckeys.ack_mac(
                             key, bytes.fromhex(self.headers.get("X-BRT-MAC")), acked)})

    def do_hello(self, app, device_id):
        body = self._body(MAX_HELLO)
        key = self._authed(app, device_id, body)
        try:
            h = json.loads(body)
            if not isinstance(h, dict) or h.get("v") != API:
                raise DepotError("api_version", OLD_API, 426)
            nonce = bytes.fromhex(h["nonce"])
            if len(nonce) != 16:
                raise ValueError("nonce")
            have = {int(k): _u32(v) for k, v in h.get("have", {}).items()}
            unsent = _u32(h.get("unsent", 0))
            dtime = _u32(h.get("time", 0))
            inc = _u32(h.get("inc", 0))
            last_seq = _u32(h.get("last_seq", 0))
            trusted = h.get("trusted")
            if not isinstance(trusted, bool):
                raise TypeError
        except (ValueError, TypeError, AttributeError, KeyError):
            raise DepotError("malformed", "hello body") from None
        app.store.hello(device_id, dtime, unsent, have, inc, last_seq, trusted)
        skip = app.store.refused_for_good(device_id)
        offers = []
        for kind, (version, size) in sorted(app.store.latest_bundles().items()):
            if kind in (1, 2, 3, 4) and version > have.get(kind, 0) and \
                    (kind, version) not in skip:
                offers.append({"kind": kind, "version": version, "size": size,
                               "path": "/v2/bundles/%d/%d" % (kind, version)})
        t = int(app.clock())
        self._json(200, {"v": API, "time": t, "time_mac": synckeys.time_mac(key, nonce, t),
                         "bundles": offers})

    def do_report(self, app, device_id):
        body = self._body(MAX_HELLO)
        self._authed(app, device_id, body)
        try:
            r = json.loads(body)
            refused = []
            for kind, version, reason in r.get("refused", []):
                if not (isinstance(reason, str) and 0 < len(reason) <= 32 and
                        reason.isprintable()):
                    raise ValueError("reason")
                refused.append((_u32(kind), _u32(version), reason))
            tr = r.get("time")
            if tr is not None:
                tr = {"offered": _u32(tr["offered"]), "device": _u32(tr["device"]),
                      "why": str(tr["why"])[:32]}
        except (ValueError, TypeError, AttributeError, KeyError):
            raise DepotError("malformed", "report body") from None
        app.store.report(device_id, refused, tr)
        app.count("reports")
        self._json(200, {"ok": True})

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
        return {"api": API, "depot_id": self.store.meta("depot_id"),
                "db_incarnation": self.store.meta("db_inc"), "time": int(self.clock()),
                "devices": self.store.devices(),
                "alarms": self.store.alarms(),
                "gaps": [list(g) for g in self.store.gaps()],
                "conflicts": [[d, i, s, t] for d, i, s, t, _p in self.store.conflicts()],
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
        "<td>%s</td><td>%s</td><td>%s</td></tr>"
        % (e(d["device_id"]), _ts(d["last_seen"]), _ts(d["last_upload"]), d["taps"],
           "-" if d["incarnation"] is None else "%08x" % d["incarnation"],
           "-" if d["max_seq"] is None else d["max_seq"],
           "-" if d["unsent_on_device"] is None else d["unsent_on_device"],
           "-" if d["skew_s"] is None else d["skew_s"],
           e(", ".join("kind %d v%d: %s (%d times)" % r for r in d["refused"]) or "-"),
           e("%(offered)s refused: %(why)s" % d["time_refused"] if d["time_refused"] else "-"))
        for d in st["devices"])
    alarms = "".join("<li>%s %s %s: %s</li>" % (_ts(a["at"]), e(a["kind"]),
                                                 e(a["device_id"] or ""), e(a["detail"]))
                     for a in st.get("alarms", [])) or "<li>none</li>"
    gaps = "".join("<li>%s: seq %d&ndash;%d missing</li>" % (e(g[0]), g[1], g[2])
                   for g in st["gaps"]) or "<li>none</li>"
    conf = "".join("<li>%s: incarnation %08x seq %d</li>" % (e(c[0]), c[1], c[2])
                   for c in st.get("conflicts", [])) \
        or "<li>none</li>"
    ob = st["outbox"]
    return """<!doctype html><html><head><meta charset="utf-8"><title>Depot %s</title>
<meta http-equiv="refresh" content="10"></head><body>
<h1>Depot %s</h1><p>time %s (UTC); sync API v%d; database incarnation %s</p>
<h2>Alarms</h2><ul>%s</ul>
<h2>Back office uplink</h2><p>pending: %d batches, %d taps (oldest %s); delivered: %d batches,
%d taps; most attempts %d; last error: %s</p>
<h2>Validators</h2><table border="1" cellpadding="3"><tr><th>device</th><th>last seen</th>
<th>last upload</th><th>taps stored</th><th>journal incarnation</th><th>last seq</th>
<th>unsent on device</th><th>clock skew s</th><th>bundles refused</th><th>time refused</th>
</tr>%s</table>
<h2>Sequence gaps</h2><ul>%s</ul>
<h2>Conflicts (same device, incarnation and seq, other bytes: kept as evidence, not
uploaded)</h2><ul>%s</ul>
<h2>Bundles</h2><p>%s</p></body></html>
""" % (e(st["depot_id"]), e(st["depot_id"]), _ts(st["time"]), st["api"],
       e(str(st["db_incarnation"])), alarms, ob["pending_batches"],
       ob["pending_taps"], _ts(ob["oldest_pending"]), ob["delivered_batches"],
       ob["delivered_taps"], ob["max_attempts"], e(str(ob["last_error"] or "-")), rows, gaps,
       conf,
       e(", ".join("kind %s v%s" % kv for kv in sorted(st["bundles"].items())) or "none"))


def open_store(path):
    return DepotStore(path).open()
