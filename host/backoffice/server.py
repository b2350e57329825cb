"""The back office's HTTP API (docs/sync-api.md, 'Back-office API', version 2): Starlette
routes on uvicorn (host/httpservice.py: bounded heads, bodies and JSON; every refusal a JSON
4xx), the batch body validated by a pydantic model, store work on worker threads.

POST /v2/batches           a depot's batch: JSON body, X-BRT-Depot, Idempotency-Key, X-BRT-MAC
GET  /v2/deny/deltas?since=V   signed deny-list deltas after version V (hex, oldest first)
GET  /v2/report            settlement, proofs used twice, passes over allowance (JSON;
                           operator credential)
GET  /v2/status, /         alarms, evidence, gaps (JSON; the HTML index and status page)
GET  /dashboard            the operator's dashboard (operator credential)
Anything under /v1/ is refused with 426 api_version.
"""

import hashlib
import hmac
import html
import re
import threading
import time
from typing import Annotated

import anyio
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, \
    StringConstraints, ValidationError
from starlette.responses import Response
from starlette.routing import Route, Router

from host.backoffice.store import BackofficeError
from host.httpservice import Cut, Edge, HTTPService, header, json_response, parse_json, \
    read_body

MAX_BODY = 8 * 1024 * 1024
MAX_TAPS = 2000          # a depot sends at most 500 a batch (host/depot/outbox.py)
_KEY = re.compile(r"^[!-~]{1,128}$")

U32 = Annotated[StrictInt, Field(ge=0, le=0xFFFFFFFF)]  # no bools, no floats
_Dev = Annotated[StrictStr, StringConstraints(pattern=r"^[!-.0-~]{1,64}$")]
_Hex = Annotated[StrictStr, StringConstraints(pattern=r"^(?:[0-9a-fA-F]{2}){0,1024}$")]
_Tag = Annotated[StrictStr, StringConstraints(pattern=r"^[0-9a-fA-F]{32}$")]


class Batch(BaseModel):
    """`POST /v2/batches` body (docs/sync-api.md; ranges docs/ranges.md)."""
    model_config = ConfigDict(extra="ignore")  # strict per field: tuples from JSON arrays
    depot: StrictStr
    batch: StrictStr
    taps: Annotated[list[tuple[_Dev, U32, U32, U32, _Hex, _Tag]], Field(max_length=MAX_TAPS)]


def _u32(v):
    """True for a JSON unsigned 32-bit integer (journal seq and times are u32)."""
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2 ** 32


def batch_mac(secret, body):
    return hmac.new(bytes(secret), bytes(body), hashlib.sha256).hexdigest()


def _run(fn, *args):
    return anyio.to_thread.run_sync(fn, *args)


def _operator(request):
    """Refuse without the operator credential (docs/sync-api.md "Operator credential")."""
    from host.backoffice import dashboard
    srv = request.scope["bo"]
    if not dashboard.authorized(srv.operator_token, header(request, "authorization", 1024)):
        raise BackofficeError("operator_credential", "this page shows rider data: send the "
                              "operator credential (Authorization: Bearer TOKEN)", 401)


async def do_batches(request):
    srv = request.scope["bo"]
    store = srv.store
    if srv.down.is_set():  # test hook: the uplink or the service is down
        raise Cut("down")
    body = await read_body(request, MAX_BODY)
    depot = header(request, "x-brt-depot", 64) or ""
    key = header(request, "idempotency-key", 128) or ""
    mac = header(request, "x-brt-mac", 64) or ""

    def work():
        secret = store.depot_secret(depot) if depot else None
        if secret is None:
            raise BackofficeError("unknown_depot", depot, 401)
        if not hmac.compare_digest(batch_mac(secret, body), mac.lower()):
            raise BackofficeError("bad_mac", depot, 401)
        if not _KEY.match(key):
            raise BackofficeError("malformed", "Idempotency-Key")
        try:
            msg = Batch.model_validate(parse_json(body))
            if msg.depot != depot or msg.batch != key:
                raise ValueError("depot/batch differ from the headers")
        except ValidationError as e:
            err = e.errors()[0]
            raise BackofficeError("malformed", ("%s %s" % (".".join(map(str, err["loc"])),
                                                           err["msg"]))[:160]) from None
        except ValueError as e:
            raise BackofficeError("malformed", str(e)[:120]) from None
        taps = [(dev, inc, seq, t, bytes.fromhex(p), bytes.fromhex(g))
                for dev, inc, seq, t, p, g in msg.taps]
        out = store.ingest(depot, key, taps, hashlib.sha256(body).digest())
        if srv.drop_answers.is_set():  # test hook: committed, but the answer is lost
            raise Cut("answer lost")
        return out
    return json_response(200, await _run(work))


async def do_deltas(request):
    store = request.scope["bo"].store
    m = re.match(r"^since=(\d{1,10})$", request.url.query)
    if not m:
        raise BackofficeError("malformed", "since=V required")

    def work():
        return {"latest": store.deny_version(),
                "deltas": [d.hex() for d in store.deltas_since(int(m.group(1)))]}
    return json_response(200, await _run(work))


async def do_report(request):
    _operator(request)
    return json_response(200, await _run(report, request.scope["bo"].store))


async def do_status(request):
    return json_response(200, await _run(status, request.scope["bo"].store))


async def do_page(request):
    st = await _run(status, request.scope["bo"].store)
    return Response(status_page(st).encode(), 200, media_type="text/html; charset=utf-8")


async def do_dashboard(request):
    """The operator's page (host/backoffice/dashboard.py): its own credential check (a 401
    with a Basic challenge, so a browser asks) and page."""
    from host.backoffice import dashboard
    srv = request.scope["bo"]
    code, body, head = await _run(dashboard.respond, srv,
                                  header(request, "authorization", 1024))
    # a refusal is dashboard.py's JSON operator_credential error with the Basic challenge
    return Response(body, code, headers=dict(head))


async def do_old(request):
    raise BackofficeError("api_version", OLD_API, 426)


ROUTES = [
    Route("/v2/batches", do_batches, methods=["POST"]),
    Route("/v2/deny/deltas", do_deltas, methods=["GET"]),
    Route("/v2/report", do_report, methods=["GET"]),
    Route("/v2/status", do_status, methods=["GET"]),
    Route("/dashboard", do_dashboard, methods=["GET"]),
    Route("/", do_page, methods=["GET"]),
    Route("/v1/{rest:path}", do_old, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
]


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
    """The back office's index and status page (`/`): links to the operator's pages, then
    alarms first (an operator settles each), evidence
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
<nav><a href="/dashboard">operator dashboard</a> (operator credential) &middot;
<a href="/v2/report">report, JSON</a> (operator credential) &middot;
<a href="/v2/status">status, JSON</a> &middot; API: docs/sync-api.md</nav>
<p>time %s (UTC); sync API v%d; %d taps; deny list version %d</p>
<h2>Alarms</h2><ul>%s</ul>
<h2>Evidence (kept, not settled)</h2><ul>%s</ul>
<h2>Sequence gaps</h2><ul>%s</ul></body></html>
""" % (ts(st["time"]), st["api"], st["taps"], st["deny_version"], alarms, ev, gaps)


class BackofficeServer(HTTPService):
    """`BackofficeServer(store).start()`, `.url`, `.stop()`. `.operator_token`: the operator
    credential (None: the report and the dashboard answer 401 to everyone). Test hooks:
    `.down.set()` refuses uploads; `.drop_answers.set()` commits them but loses the answer."""

    thread_name = "backoffice-http"

    def __init__(self, store, host="127.0.0.1", port=0, operator_token=None):
        super().__init__(host, port)
        self.store = store
        self.down = threading.Event()
        self.drop_answers = threading.Event()
        self.operator_token = operator_token  # the report's and the dashboard's credential
        self.depot_status_urls = []  # depots' /v2/status, for the dashboard's pending uploads
        edge = Edge(Router(ROUTES, redirect_slashes=False), (BackofficeError,))
        me = self

        async def asgi(scope, receive, send):
            scope["bo"] = me
            await edge(scope, receive, send)
        self.asgi = asgi
