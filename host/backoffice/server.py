"""The back office's HTTP API (docs/sync-api.md, 'Depot -> back office').

POST /v1/batches           a depot's batch: JSON body, X-BRT-Depot, Idempotency-Key, X-BRT-MAC
GET  /v1/deny/deltas?since=V   signed deny-list deltas after version V (hex, oldest first)
GET  /v1/report            settlement, proofs used twice, passes over allowance (JSON)
"""

import hashlib
import hmac
import json
import re
import threading
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

    def _json(self, code, obj):
        data = json.dumps(obj).encode()
        try:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
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
        if self.path != "/v1/batches":
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
            for dev, seq, t, payload in msg["taps"]:
                if not (isinstance(dev, str) and 0 < len(dev) <= 64 and _u32(seq) and
                        _u32(t) and isinstance(payload, str) and len(payload) <= 2048):
                    raise ValueError("tap fields")
                taps.append((dev, seq, t, bytes.fromhex(payload)))
        except (ValueError, KeyError, TypeError) as e:
            raise BackofficeError("malformed", str(e)[:100]) from None
        out = store.ingest(depot, key, taps)
        if self.server.drop_answers.is_set():  # test hook: committed, but the answer is lost
            raise ConnectionError("answer lost")
        self._json(200, out)

    def _get(self):
        store = self.server.store
        path, _, query = self.path.partition("?")
        if path == "/v1/deny/deltas":
            m = re.match(r"^since=(\d{1,10})$", query)
            if not m:
                raise BackofficeError("malformed", "since=V required")
            self._json(200, {"latest": store.deny_version(),
                             "deltas": [d.hex() for d in store.deltas_since(int(m.group(1)))]})
        elif path == "/v1/report":
            self._json(200, report(store))
        else:
            raise BackofficeError("not_found", self.path, 404)


def report(store):
    return {"taps": store.count(), "settlement": store.settlement(),
            "proofs_used_twice": store.proofs_used_twice(),
            "over_allowance": store.over_allowance(), "bad_records": store.bad_records(),
            "deny_version": store.deny_version()}


class BackofficeServer(HTTPService):
    """`BackofficeServer(store).start()`, `.url`, `.stop()`. Test hooks: `.down.set()` refuses
    uploads; `.drop_answers.set()` commits them but loses the answer."""

    thread_name = "backoffice-http"

    def __init__(self, store, host="127.0.0.1", port=0):
        super().__init__(_Handler, host, port)
        self.store = store
        self.down = threading.Event()
        self.drop_answers = threading.Event()

    def _attach(self, httpd):
        httpd.store = self.store
        httpd.down = self.down
        httpd.drop_answers = self.drop_answers
