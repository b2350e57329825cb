"""The back office's HTTP API (docs/sync-api.md, 'Back-office API', version 2).

POST /v2/batches           a depot's batch: JSON body, X-BRT-Depot, Idempotency-Key, X-BRT-MAC
GET  /v2/deny/deltas?since=V   signed deny-list deltas after version V (hex, oldest first)
GET  /v2/report            settlement, proofs used twice, passes over allowance (JSON)
GET  /v2/status, /         alarms, evidence, gaps, depots (JSON; the HTML status page)
Anything under /v1/ is refused with 426 api_version.
"""

import hashlib
import hmac
import html
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler

from host.backoffice.store import BackofficeError
from host.httpservice import HTTPService

MAX_BODY = 8 * 1024 * 1024
_KEY = re.compile(r"^[!-~]{1,128}$")


def _u32(v):
    """True for a JSON unsigned 32-bit integer (journal seq and times are u32)."""
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2 ** 32


def batch_mac(secret, body):
    return hmac.new(bytes(secret), bytes(body), hashlib.sha256).hexdigest()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30
    server_version = "brt-backoffice/1"

    def log_message(self, fmt, *args):
        pass

    def _json(self, code, obj, ctype="application/json"):
        data = json.dumps(obj).encode() if ctype == "application/json" else obj
        try:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
        except (ConnectionError, TimeoutError):
            pass

    def _run(self, fn):
        self.close_connection = True
        try:
            fn()
        except BackofficeError as e:
            self._json(e.status, {"error": e.reason, "detail": e.detail})
        except (ConnectionError, TimeoutError):
            pass
        except Exception as e:  # noqa: BLE001 - keep serving; the depot retries
            self._json(500, {"error": "internal", "detail": type(e).__name__})

    def do_POST(self):  # noqa: N802
        self._run(self._post)

    def do_GET(self):  # noqa: N802
        self._run(self._get)

    def _post(self):
        if self.path.startswith("/v1/"):
            raise BackofficeError("api_version", OLD_API, 426)
        if self.path != "/v2/batches":
            raise BackofficeError("not_found", self.path, 404)
        store = self.server.store
        if self.server.down.is_set():  # test hook: the uplink or the service is down
            raise ConnectionError("down")
        try:
            n = int(self.headers.get("Content-Length", ""))
        except ValueError:
            raise BackofficeError("malformed", "Content-Length required", 411) from None
        if not 0 <= n <= MAX_BODY:
            raise BackofficeError("too_large", str(n), 413)
        body = self.rfile.read(n)
        if len(body) != n:
            raise ConnectionError("short body")
        depot = self.headers.get("X-BRT-Depot", "")
        key = self.headers.get("Idempotency-Key", "")
        secret = store.depot_secret(depot)
        if secret is None:
            raise BackofficeError("unknown_depot", depot, 401)
        mac = self.headers.get("X-BRT-MAC", "")
        if not hmac.compare_digest(batch_mac(secret, body), mac.lower()):
            raise BackofficeError("bad_mac", depot, 401)
        if not _KEY.match(key):
            raise BackofficeError("malformed", "Idempotency-Key")
        try:
            msg = json.loads(body)
            if msg["depot"] != depot or msg["batch"] != key:
                raise ValueError("depot/batch differ from the headers")
            taps = []
            for dev, inc, seq, t, payload, tag in msg["taps"]:
                if not (isinstance(dev, str) and 0 < len(dev) <= 64 and _u32(inc) and
                        _u32(seq) and _u32(t) and isinstance(payload, str) and
                        len(payload) <= 2048 and isinstance(tag, str) and len(tag) == 32):
                    raise ValueError("tap fields")
                taps.append((dev, inc, seq, t, bytes.fromhex(payload), bytes.fromhex(tag)))
        except (ValueError, KeyError, TypeError) as e:
            raise BackofficeError("malformed", str(e)[:100]) from None
        out = store.ingest(depot, key, taps, hashlib.sha256(body).digest())
        if self.server.drop_answers.is_set():  # test hook: committed, but the answer is lost
            raise ConnectionError("answer lost")
        self._json(200, out)

    def _get(self):
        store = self.server.store
        path, _, query = self.path.partition("?")
        if path.startswith("/v1/"):
            raise BackofficeError("api_version", OLD_API, 426)
        if path == "/v2/deny/deltas":
            m = re.match(r"^since=(\d{1,10})$", query)
            if not m:
                raise BackofficeError("malformed", "since=V required")
            self._json(200, {"latest": store.deny_version(),
                             "deltas": [d.hex() for d in store.deltas_since(int(m.group(1)))]})
        elif path == "/v2/report":
            self._json(200, report(store))
        elif path == "/v2/status":
            self._json(200, status(store))
        elif path == "/":
            self._json(200, status_page(status(store)).encode(), "text/html; charset=utf-8")
        elif path == "/dashboard":  # the operator's page (host/backoffice/dashboard.py)
            from host.backoffice import dashboard
            code, body, head = dashboard.respond(self.server.owner,
                                                 self.headers.get("Authorization"))
            self.send_response(code)
            for k, v in head + [("Content-Length", str(len(body))), ("Connection", "close")]:
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)
        else:
            raise BackofficeError("not_found", self.path, 404)


OLD_API = ("this back office speaks sync API version 2 (docs/sync-api.md): update the depot "
           "host")


def report(store):
    return {"taps": store.count(), "settlement": store.settlement(),
            "proofs_used_twice": store.proofs_used_twice(),
            "over_allowance": store.over_allowance(), "bad_records": store.bad_records(),
            "deny_version": store.deny_version(), "gaps": [list(g) for g in store.gaps()],
            "alarms": len(store.alarms()), "evidence": len(store.evidence())}


def status(store):
    return {"api": 2, "time": int(time.time()), "taps": store.count(),
            "alarms": store.alarms(), "evidence": [list(e) for e in store.evidence()],
            "gaps": [list(g) for g in store.gaps()], "deny_version": store.deny_version()}


def status_page(st):
    """The back office's status page: alarms first (an operator settles each), evidence
    kept aside, sequence gaps per validator and journal incarnation."""
    e = html.escape

    def ts(t):
        return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t))
    alarms = "".join("<li>%s %s %s %s: %s</li>" % (ts(a["at"]), e(a["kind"]),
                                                    e(a["depot_id"] or ""),
                                                    e(a["device_id"] or ""), e(a["detail"]))
                     for a in st["alarms"]) or "<li>none</li>"
    ev = "".join("<li>%s incarnation %08x seq %d: %s (from %s)</li>"
                 % (e(x[0]), x[1], x[2], e(x[3]), e(x[4])) for x in st["evidence"]) \
        or "<li>none</li>"
    gaps = "".join("<li>%s incarnation %08x: seq %d&ndash;%d missing</li>"
                   % (e(g[0]), g[1], g[2], g[3]) for g in st["gaps"]) or "<li>none</li>"
    return """<!doctype html><html><head><meta charset="utf-8"><title>Back office</title>
<meta http-equiv="refresh" content="30"></head><body><h1>Back office</h1>
<p>time %s (UTC); sync API v%d; %d taps; deny list version %d</p>
<h2>Alarms</h2><ul>%s</ul>
<h2>Evidence (kept, not settled)</h2><ul>%s</ul>
<h2>Sequence gaps</h2><ul>%s</ul></body></html>
""" % (ts(st["time"]), st["api"], st["taps"], st["deny_version"], alarms, ev, gaps)


class BackofficeServer(HTTPService):
    """`BackofficeServer(store).start()`, `.url`, `.stop()`. Test hooks: `.down.set()` refuses
    uploads; `.drop_answers.set()` commits them but loses the answer."""

    thread_name = "backoffice-http"

    def __init__(self, store, host="127.0.0.1", port=0):
        super().__init__(_Handler, host, port)
        self.store = store
        self.down = threading.Event()
        self.drop_answers = threading.Event()
        self.operator_token = None   # the dashboard's credential (None: the page is closed)
        self.depot_status_urls = []  # depots' /v2/status, for the dashboard's pending uploads

    def _attach(self, httpd):
        httpd.store = self.store
        httpd.down = self.down
        httpd.drop_answers = self.drop_answers
        httpd.owner = self
