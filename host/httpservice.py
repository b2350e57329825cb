"""The depot's and the back office's HTTP edge: a Starlette (ASGI) app served by uvicorn
(h11, pure Python) on its own thread, with the interface the tests and the simulator use:
`start()` (returns self; port 0 = ephemeral, the real port is read back), `.url`, `stop()`.

Bounds every handler relies on (docs/sync-api.md "Limits"): the request head (line and
headers) at most MAX_HEAD bytes (h11), a body at most the endpoint's limit, read within
BODY_TIMEOUT_S, JSON at most MAX_JSON_DEPTH deep. Every refusal is a 4xx with a JSON body
`{"error", "detail"}`: uvicorn's own plain-text 400 for a request h11 cannot parse is
replaced by the JSON one (`_Protocol`), and so is its 500 for a request line it chokes on.
"""

import asyncio
import json
import logging
import socket
import threading

import anyio
import h11
import pydantic_core
from starlette.exceptions import HTTPException
from starlette.responses import Response
from uvicorn import Config, Server
from uvicorn.protocols.http.h11_impl import H11Protocol

MAX_HEAD = 8192          # request line + headers, bytes (the firmware sends ~200)
HEAD_TIMEOUT_S = 10.0    # a request head trickled in (or never sent) cannot hold a
                         # connection for ever: uvicorn's keep-alive timer restarts at
                         # every byte, so a slow client would otherwise stay
BODY_TIMEOUT_S = 15.0    # a stalled upload cannot hold a body reader for ever
MAX_DRAIN = 4 << 20      # an over-limit body up to this much more is read and dropped
MAX_JSON_DEPTH = 8       # the deepest body of the API is 3 (a batch's taps)
_BAD_HEAD = json.dumps({"error": "malformed", "detail": "HTTP request not understood"}).encode()
_SLOW_HEAD = json.dumps({"error": "timeout", "detail": "request head not received in time"}
                        ).encode()
_REASONS = {404: "not_found", 405: "method_not_allowed", 400: "malformed"}


class EdgeError(Exception):
    """An answer the edge gives by itself (reason, detail, status); the services map their
    own error families onto the same JSON."""

    def __init__(self, reason, detail="", status=400):
        super().__init__("%s: %s" % (reason, detail))
        self.reason, self.detail, self.status = reason, detail, status


class Cut(Exception):
    """Test hook: end the exchange without an answer, as a crash or a lost uplink would."""


def json_response(status, obj, headers=None):
    # json.dumps as before the framework move: the bytes a validator parses do not change
    return Response(json.dumps(obj).encode(), status, headers=headers,
                    media_type="application/json")


def error_response(reason, detail, status):
    return json_response(status, {"error": reason, "detail": detail})


async def read_body(request, limit):
    """The body, at most `limit` bytes, announced by Content-Length (411 without one,
    413 above the limit, 400 if it does not arrive whole in BODY_TIMEOUT_S)."""
    cl = request.headers.get("content-length")
    if cl is None or not cl.isdigit() or len(cl) > 12:
        raise EdgeError("malformed", "Content-Length required", 411)
    n = int(cl)
    if n > limit:
        if n <= limit + MAX_DRAIN:  # read and drop it first: closing on unread bytes sends a
            try:                    # TCP reset, and the client could lose the 413
                with anyio.fail_after(BODY_TIMEOUT_S):
                    async for _chunk in request.stream():
                        pass
            except (TimeoutError, OSError):
                pass
        raise EdgeError("too_large", "%d bytes (limit %d)" % (n, limit), 413)
    buf = bytearray()
    try:
        with anyio.fail_after(BODY_TIMEOUT_S):
            async for chunk in request.stream():
                buf += chunk
                if len(buf) > n:
                    raise EdgeError("malformed", "body longer than Content-Length")
    except TimeoutError:
        raise EdgeError("malformed", "body not received in %d s" % BODY_TIMEOUT_S) from None
    if len(buf) != n:  # cut mid-upload: nothing is stored, nothing acknowledged
        raise Cut("short body")
    return bytes(buf)


def parse_json(body, max_depth=MAX_JSON_DEPTH):
    """Strict JSON (UTF-8, no NaN/Infinity, nothing trailing) at most max_depth deep, else
    ValueError. The parser (pydantic-core's jiter) has its own recursion bound, so 4,000
    `[` cost a ValueError, not a RecursionError."""
    obj = pydantic_core.from_json(body, allow_inf_nan=False)
    stack = [(obj, 1)]
    while stack:
        o, d = stack.pop()
        if isinstance(o, (list, dict)):
            if d > max_depth:
                raise ValueError("JSON nested deeper than %d" % max_depth)
            stack.extend((v, d + 1) for v in (o.values() if isinstance(o, dict) else o))
    return obj


def header(request, name, limit=256):
    """A header as text of at most `limit` printable ASCII characters, else None (a
    non-ASCII MAC is a bad MAC, never a TypeError)."""
    v = request.headers.get(name)
    if v is None or len(v) > limit or not v.isascii() or not v.isprintable():
        return None
    return v


class Edge:
    """The outermost ASGI layer around a Starlette Router: every error family becomes the
    API's JSON answer. `errors` maps exception classes of the service (with .reason,
    .detail, .status) to the same JSON; Cut ends the exchange unanswered (test hooks); a
    bug is a JSON 500 `internal` (nothing was acknowledged: the client retries)."""

    def __init__(self, router, errors=(), on_error=None):
        self.router = router
        self.errors = (EdgeError,) + tuple(errors)
        self.on_error = on_error  # called with the reason (counters)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        scope["app"] = self  # the router raises HTTPException for 404/405 (answered below)
        started = False
        # h11 bounds a head that arrives in pieces; one that arrives whole is bounded here
        size = len(scope.get("raw_path", b"")) + len(scope.get("query_string", b"")) + sum(
            len(k) + len(v) + 4 for k, v in scope.get("headers", ()))
        if size > MAX_HEAD:
            if self.on_error is not None:
                self.on_error("too_large")
            await error_response("too_large", "request head of %d bytes (limit %d)"
                                 % (size, MAX_HEAD), 431)(scope, receive, send)
            return

        async def send_(msg):
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
                # one exchange per connection (docs/sync-api.md), as the firmware expects
                msg = dict(msg, headers=list(msg.get("headers", [])) +
                           [(b"connection", b"close")])
            await send(msg)
        try:
            await self.router(scope, receive, send_)
            return
        except Cut:
            if not started:  # a head promising a body that never comes: the client sees a cut
                await send({"type": "http.response.start", "status": 200, "headers": [
                    (b"content-length", b"64"), (b"connection", b"close")]})
            return
        except self.errors as e:
            resp = error_response(e.reason, e.detail, e.status)
            reason = e.reason
        except HTTPException as e:
            code = e.status_code if 400 <= e.status_code < 500 else 400
            reason = _REASONS.get(code, "malformed")
            resp = error_response(reason, scope.get("path", "")[:200], code)
        except (ConnectionError, OSError) as e:  # the client went away mid-answer
            if started:
                return
            resp, reason = error_response("internal", type(e).__name__, 500), "internal"
        except Exception as e:  # noqa: BLE001 - a bug: answer 500, keep serving
            if started:
                raise
            logging.getLogger("brt.http").exception("internal error")
            resp, reason = error_response("internal", type(e).__name__, 500), "internal"
        if self.on_error is not None:
            self.on_error(reason)
        if not started:
            await resp(scope, receive, send)


class _Protocol(H11Protocol):
    """uvicorn's h11 protocol with JSON refusals: a request h11 cannot parse (a head above
    MAX_HEAD, bad framing) and one whose target uvicorn cannot decode get a JSON 400; a
    head not complete HEAD_TIMEOUT_S after the connection opened (or after the previous
    answer) gets a JSON 408 and the connection is closed."""

    _head_timer = None

    def connection_made(self, transport):
        super().connection_made(transport)
        self._arm_head_timer()

    def on_response_complete(self):
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_head_timer()     # the next request's head gets its own deadline

    def connection_lost(self, exc):
        self._cancel_head_timer()
        super().connection_lost(exc)

    def _arm_head_timer(self):
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(HEAD_TIMEOUT_S, self._head_expired)

    def _cancel_head_timer(self):
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_expired(self):
        self._head_timer = None
        # h11 leaves their_state IDLE until a whole request head has arrived; a request
        # whose head came is the body's and the handler's business (BODY_TIMEOUT_S)
        if self.transport.is_closing() or self.conn.their_state is not h11.IDLE or \
                (self.cycle is not None and not self.cycle.response_complete):
            return
        self._refuse(408, b"Request Timeout", _SLOW_HEAD)

    def send_400_response(self, msg):
        self._refuse(400, b"Bad Request", _BAD_HEAD)

    def _refuse(self, status, reason, body):
        for ev in (h11.Response(status_code=status, reason=reason, headers=[
                (b"content-type", b"application/json"), (b"connection", b"close"),
                (b"content-length", str(len(body)).encode())]),
                h11.Data(data=body), h11.EndOfMessage()):
            try:
                self.transport.write(self.conn.send(ev))
            except h11.LocalProtocolError:
                break
        self.transport.close()

    def handle_events(self):
        try:
            super().handle_events()
        except (UnicodeError, ValueError):  # e.g. a non-ASCII request target
            if self.conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                self.send_400_response("bad target")
            else:
                self.transport.close()


class HTTPService:
    """Serve `self.asgi` (built by the subclass) on host:port from a daemon thread."""

    thread_name = "http"

    def __init__(self, host="127.0.0.1", port=0):
        self.host, self.port = host, port
        self.asgi = None
        self._server = None
        self._thread = None

    def start(self):
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(128)
        sock.setblocking(False)
        self.port = sock.getsockname()[1]
        cfg = Config(self.asgi, http=_Protocol, lifespan="off", access_log=False,
                     log_level="warning", server_header=False, timeout_keep_alive=5,
                     timeout_graceful_shutdown=2, h11_max_incomplete_event_size=MAX_HEAD)
        self._server = Server(cfg)
        self._server.install_signal_handlers = lambda: None  # not the main thread
        started = threading.Event()

        def run():
            loop = asyncio.new_event_loop()
            try:
                task = loop.create_task(self._server.serve(sockets=[sock]))
                loop.call_soon(started.set)
                loop.run_until_complete(task)
            finally:
                sock.close()
                loop.close()
        self._thread = threading.Thread(target=run, daemon=True, name=self.thread_name)
        self._thread.start()
        started.wait(10)
        for _ in range(500):  # until uvicorn says it listens
            if self._server.started or not self._thread.is_alive():
                break
            threading.Event().wait(0.01)
        return self

    @property
    def url(self):
        return "http://%s:%d" % (self.host, self.port)

    def stop(self):
        if self._server is not None:
            self._server.should_exit = True
            self._thread.join(timeout=15)
            self._server = None


logging.getLogger("uvicorn.error").setLevel(logging.ERROR)  # not a line per bad request
__all__ = ["HTTPService", "EdgeError", "Cut", "read_body", "parse_json", "header",
           "json_response", "error_response", "Edge"]
