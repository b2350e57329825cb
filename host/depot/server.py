"""The depot's HTTP service (docs/sync-api.md, API version 2): Starlette routes served by
uvicorn (host/httpservice.py: bounded heads, bodies and JSON; every refusal a JSON 4xx),
request bodies validated by pydantic models, store work on worker threads.

Validators talk plain HTTP/1.1 with `Connection: close` (one exchange per connection keeps
the firmware client's state machine small). Every answer is JSON except bundle downloads
and the status page. A batch is acknowledged only after its transaction committed, and the
acknowledgement and the time are MAC'd with the device's sync key (a fake access point
can neither make a validator drop taps nor set its clock). A client of API version 1 gets
`426 api_version` on every path, never a half-understood answer.
"""

import html
import re
import threading
import time
from typing import Annotated, Optional

import anyio
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, \
    StringConstraints, ValidationError
from starlette.responses import Response
from starlette.routing import Route, Router

from host import synckeys
from host.depot import wire
from host.depot.errors import DepotError
from host.depot.store import DepotStore
from host.httpservice import Cut, Edge, HTTPService, header, json_response, parse_json, \
    read_body

MAX_HELLO = 4096
API = 2
_DEV = re.compile(r"^[!-.0-~]{1,64}$")  # printable ASCII without '/' or space
OLD_API = ("this depot speaks sync API version %d (docs/sync-api.md): update the validator "
           "firmware" % API)

# --- request models (docs/sync-api.md, docs/ranges.md: every number a u32) ------------------
U32 = Annotated[StrictInt, Field(ge=0, le=0xFFFFFFFF)]  # no bools, no floats
_Strict = ConfigDict(extra="ignore")  # strict per field: tuples from JSON arrays


class Hello(BaseModel):
    model_config = _Strict
    v: StrictInt
    nonce: Annotated[StrictStr, StringConstraints(pattern=r"^[0-9a-fA-F]{32}$")]
    trusted: StrictBool
    time: U32 = 0
    inc: U32 = 0
    last_seq: U32 = 0
    unsent: U32 = 0
    have: Annotated[dict[Annotated[StrictStr, StringConstraints(pattern=r"^[0-9]{1,10}$")], U32],
                    Field(max_length=16)] = {}


class TimeRefused(BaseModel):
    model_config = _Strict
    offered: U32
    device: U32
    why: Annotated[StrictStr, StringConstraints(max_length=32)]


class Report(BaseModel):
    model_config = _Strict
    refused: Annotated[list[tuple[U32, U32, Annotated[StrictStr, StringConstraints(
        pattern=r"^[ -~]{1,32}$")]]], Field(max_length=64)] = []
    time: Optional[TimeRefused] = None


def _model(cls, obj, what):
    try:
        return cls.model_validate(obj)
    except ValidationError as e:
        err = e.errors()[0]
        raise DepotError("malformed", "%s: %s %s" % (what, ".".join(map(str, err["loc"])),
                                                       err["msg"])[:160]) from None


def _json_body(body, what):
    try:
        return parse_json(body)
    except ValueError as e:
        raise DepotError("malformed", "%s: %s" % (what, str(e)[:120])) from None


def _device(request):
    dev = request.path_params["device_id"]
    if not _DEV.match(dev):
        raise DepotError("not_found", request.url.path[:200], 404)
    return dev


def _authed(app, device_id, body, request):
    """The device's sync key, once the body's MAC checked under it."""
    key = app.store.sync_key(device_id)
    if key is None:
        raise DepotError("unknown_device", device_id, 404)
    if not wire.check_mac(key, body, header(request, "x-brt-mac", 64)):
        raise DepotError("bad_mac", device_id, 401)
    return key


def _run(fn, *args):
    """Store work (SQLite, blocking) on a worker thread, off the event loop."""
    return anyio.to_thread.run_sync(fn, *args)


# --- endpoints ---------------------------------------------------------------------------
async def do_old(request):
    # an old client: a clear refusal, never an answer it could half-understand
    app = request.scope["depot"]
    app.count("old_client")
    parts = request.url.path.split("/")
    dev = parts[3] if len(parts) > 4 and parts[2] == "sync" else None
    if dev and _DEV.match(dev):
        def note():
            if app.store.sync_key(dev) is not None:
                app.store.old_client(dev, "v1")
        await _run(note)
    raise DepotError("api_version", OLD_API, 426)


async def do_batch(request):
    app = request.scope["depot"]
    device_id = _device(request)
    body = await read_body(request, wire.MAX_BODY)

    def work():
        key = _authed(app, device_id, body, request)
        dev, inc, _dtime, recs = wire.decode_batch(body)
        if dev != device_id:
            raise DepotError("malformed", "device id in body differs from the URL")
        new, dup, conf = app.store.ingest(device_id, recs, inc)  # committed when this returns
        app.count("taps_new", new)
        app.count("taps_dup", dup)
        app.count("taps_conflict", conf)
        try:
            app.fault("after_commit", device_id)
        except ConnectionError:
            raise Cut("test hook") from None
        acked = recs[-1][0]
        return {"acked": acked, "stored": new, "duplicates": dup, "conflicts": conf,
                "time": int(app.clock()), "ack_mac": synckeys.ack_mac(
                    key, bytes.fromhex(header(request, "x-brt-mac", 64)), acked)}
    return json_response(200, await _run(work))


async def do_hello(request):
    app = request.scope["depot"]
    device_id = _device(request)
    body = await read_body(request, MAX_HELLO)

    def work():
        key = _authed(app, device_id, body, request)
        obj = _json_body(body, "hello body")
        if not isinstance(obj, dict) or obj.get("v") != API or isinstance(obj.get("v"), bool):
            raise DepotError("api_version", OLD_API, 426)
        h = _model(Hello, obj, "hello body")
        have = {int(k): v for k, v in h.have.items()}
        app.store.hello(device_id, h.time, h.unsent, have, h.inc, h.last_seq, h.trusted)
        skip = app.store.refused_for_good(device_id)
        offers = []
        for kind, (version, size) in sorted(app.store.latest_bundles().items()):
            if kind in (1, 2, 3, 4) and version > have.get(kind, 0) and \
                    (kind, version) not in skip:
                offers.append({"kind": kind, "version": version, "size": size,
                               "path": "/v2/bundles/%d/%d" % (kind, version)})
        t = int(app.clock())
        return {"v": API, "time": t, "time_mac": synckeys.time_mac(
            key, bytes.fromhex(h.nonce), t), "bundles": offers}
    return json_response(200, await _run(work))


async def do_report(request):
    app = request.scope["depot"]
    device_id = _device(request)
    body = await read_body(request, MAX_HELLO)

    def work():
        _authed(app, device_id, body, request)
        r = _model(Report, _json_body(body, "report body"), "report body")
        tr = None if r.time is None else {"offered": r.time.offered, "device": r.time.device,
                                          "why": r.time.why}
        app.store.report(device_id, [tuple(x) for x in r.refused], tr)
        app.count("reports")
    await _run(work)
    return json_response(200, {"ok": True})


async def do_bundle(request):
    app = request.scope["depot"]
    kind, version = request.path_params["kind"], request.path_params["version"]
    if not (re.match(r"^\d{1,3}$", kind) and re.match(r"^\d{1,10}$", version)):
        raise DepotError("not_found", request.url.path[:200], 404)
    data = await _run(app.store.bundle, int(kind), int(version))
    if data is None:
        raise DepotError("not_found", "bundle %s/%s" % (kind, version), 404)
    start = 0
    rng = request.headers.get("range")
    if rng is not None:  # resume a cut download: "bytes=N-"
        m = re.match(r"^bytes=(\d{1,10})-$", rng.strip())
        if not m or int(m.group(1)) > len(data):
            raise DepotError("bad_range", rng[:64], 416)
        start = int(m.group(1))
    app.count("bundle_bytes", len(data) - start)
    extra = {"Content-Range": "bytes %d-%d/%d" % (start, len(data) - 1, len(data))} \
        if rng is not None else None
    return Response(data[start:], 206 if rng is not None else 200, headers=extra,
                    media_type="application/octet-stream")


async def do_time(request):
    return json_response(200, {"time": int(request.scope["depot"].clock())})


async def do_status(request):
    return json_response(200, await _run(request.scope["depot"].status))


async def do_page(request):
    st = await _run(request.scope["depot"].status)
    return Response(status_page(st).encode(), 200, media_type="text/html; charset=utf-8")


ROUTES = [
    Route("/v2/sync/{device_id}/batch", do_batch, methods=["POST"]),
    Route("/v2/sync/{device_id}/hello", do_hello, methods=["POST"]),
    Route("/v2/sync/{device_id}/report", do_report, methods=["POST"]),
    Route("/v2/bundles/{kind}/{version}", do_bundle, methods=["GET"]),
    Route("/v2/time", do_time, methods=["GET"]),
    Route("/v2/status", do_status, methods=["GET"]),
    Route("/", do_page, methods=["GET"]),
    Route("/v1/{rest:path}", do_old, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
]


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
    """`DepotServer(store, host, port).start()`; `.url`; `.stop()`. Port 0 = ephemeral.
    `.app` is the service (store, counters, clock, fault hooks); `.asgi` what uvicorn runs."""

    thread_name = "depot-http"

    def __init__(self, store, host="127.0.0.1", port=0, clock=time.time, outbox=None):
        super().__init__(host, port)
        self.app = DepotApp(store, clock, outbox)
        router = Router(ROUTES, redirect_slashes=False)
        edge = Edge(router, (DepotError,), on_error=lambda r: self.app.count("error_" + r))
        app = self.app

        async def asgi(scope, receive, send):
            scope["depot"] = app
            await edge(scope, receive, send)
        self.asgi = asgi


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
