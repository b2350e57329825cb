"""The operator's dashboard: one web page of the back office (GET /dashboard, behind the
operator credential), readable on a laptop and on a phone.

Taps per hour per corridor, revenue, devices and their last upload, pending uploads at the
depots, sequence gaps, conflicts and alarms, fraud flags. Charts are drawn on the server by
pygal (pinned in requirements.txt) as inline SVG with its JavaScript left out, so the page
needs no CDN and no script from anywhere: a depot or operator PC may be offline.

Independent of the HTTP framework: `figures(store, depots, now)` computes the numbers and
`page(fig)` returns the HTML; the server only checks the credential and sends the text.
Routes (bus and corridor of a validator) are fleet data the tap records do not carry:
`register_route(store, device_id, bus, route)` keeps them in the store's `fleet_routes`.
"""

import base64
import hmac
import html
import time

import pygal
from pygal.style import Style

WIB = 7 * 3600   # Trans-Semarang's wall clock (UTC+7): hours of the day are local
_STYLE = Style(background="transparent", plot_background="transparent",
               font_family="system-ui, sans-serif", title_font_size=16,
               legend_font_size=13, label_font_size=12, major_label_font_size=12,
               colors=("#1b6ca8", "#e07b22", "#2e9d5b", "#c23b3b", "#7d4fb0", "#8c6d31",
                       "#d45a9f", "#5c7080", "#17a3b8"))
_ROUTES_SQL = ("CREATE TABLE IF NOT EXISTS fleet_routes (device_id TEXT PRIMARY KEY, "
               "bus TEXT NOT NULL, route TEXT NOT NULL)")


def register_route(store, device_id, bus, route):
    def tx(db):
        store._x(db, _ROUTES_SQL)
        store._x(db, "INSERT INTO fleet_routes(device_id, bus, route) VALUES (?,?,?) ON "
                 "CONFLICT(device_id) DO UPDATE SET bus=excluded.bus, route=excluded.route",
                 (device_id, bus, route))
    store._tx(tx)


def authorized(token, header):
    """True if the Authorization header carries the operator credential (HTTP Basic with
    any user name, or Bearer). No credential configured: nobody is let in."""
    if not token or not header:
        return False
    kind, _, val = header.partition(" ")
    if kind.lower() == "basic":
        try:
            val = base64.b64decode(val.strip()).decode().partition(":")[2]
        except (ValueError, UnicodeDecodeError):
            return False
    elif kind.lower() != "bearer":
        return False
    return hmac.compare_digest(val.strip().encode(), token.encode())


def corridor_of(route):
    return route if route and route.startswith("K") else ("feeder" if route else "unknown")


def figures(store, depots=(), now=None):
    """Everything the page shows, as plain data (the test compares it with the
    reconciliation)."""
    store._tx(lambda db: store._x(db, _ROUTES_SQL))
    routes = {r[0]: (r[1], r[2]) for r in store._all("SELECT device_id, bus, route FROM "
                                                     "fleet_routes")}
    hours, per = {}, {}
    taps = accepted = revenue = flagged = 0
    for dev, t, answer, fare, n in store._all(
            "SELECT device_id, t, answer, fare, COUNT(*) FROM taps WHERE answer <> 3 "
            "GROUP BY device_id, t, answer, fare"):
        c = corridor_of(routes.get(dev, (None, None))[1])
        p = per.setdefault(c, {"taps": 0, "accepted": 0, "rupiah": 0})
        n = int(n)
        p["taps"] += n
        taps += n
        if answer == 0:
            p["accepted"] += n
            p["rupiah"] += int(fare or 0) * n
            accepted += n
            revenue += int(fare or 0) * n
        h = int((int(t) + WIB) // 3600 % 24) if int(t) > 1_600_000_000 else None
        if h is None:
            flagged += n   # an untrusted clock's time: not put on the day's hours
            continue
        hours.setdefault(c, [0] * 24)[h] += n
    devices = []
    for dev, last_t, n, received, depot in store._all(
            "SELECT t.device_id, MAX(t.t), COUNT(*), MAX(b.received_at), MAX(t.depot_id) "
            "FROM taps t LEFT JOIN batches b ON b.depot_id = t.depot_id AND "
            "b.idem_key = t.batch_key GROUP BY t.device_id ORDER BY t.device_id"):
        bus, route = routes.get(dev, ("", ""))
        devices.append({"device": dev, "bus": bus, "route": route, "depot": depot,
                        "records": int(n), "last_tap": int(last_t),
                        "last_upload": float(received) if received is not None else None})
    pending, dev_sync = [], {}
    for d in depots:
        ob = d.get("outbox", {})
        pending.append({"depot": d.get("depot_id"), "batches": ob.get("pending_batches", 0),
                        "taps": ob.get("pending_taps", 0), "error": ob.get("last_error")})
        for x in d.get("devices", []):
            dev_sync[x.get("device_id")] = x
    for x in devices:
        s = dev_sync.get(x["device"], {})
        x["last_sync"] = s.get("last_seen")
        x["unsent"] = s.get("unsent_on_device")
    deny = store._all("SELECT version, cause, COUNT(*) FROM deny GROUP BY version, cause "
                      "ORDER BY version")
    denied = store._all("SELECT device_id, COUNT(*) FROM taps WHERE reason = 41 "
                        "GROUP BY device_id")
    return {
        "now": now if now is not None else time.time(), "taps": taps, "accepted": accepted,
        "revenue": revenue, "clock_untrusted": flagged, "corridors": per, "hours": hours,
        "devices": devices, "pending": pending, "gaps": [list(g) for g in store.gaps()],
        "alarms": store.alarms(), "evidence": [list(e) for e in store.evidence()],
        "proofs_used_twice": [list(p) for p in store.proofs_used_twice()],
        "over_allowance": [list(o) for o in store.over_allowance()],
        "denied_taps": sum(int(r[1]) for r in denied),
        "deny": [[int(v), c, int(n)] for v, c, n in deny],
    }


def _rp(n):
    return "Rp\u00a0{:,}".format(int(n)).replace(",", ".")


def _ts(t):
    if t is None:
        return "-"
    return time.strftime("%d %b %H:%M", time.gmtime(float(t) + WIB))


def _charts(fig):
    cors = sorted(fig["hours"])
    hourly = pygal.StackedBar(style=_STYLE, js=[], height=360, width=900, legend_at_bottom=True,
                              title="Taps per hour (WIB) by corridor", x_label_rotation=0,
                              show_minor_x_labels=False, truncate_legend=-1)
    hourly.x_labels = [str(h) for h in range(24)]
    hourly.x_labels_major = [str(h) for h in range(0, 24, 3)]
    for c in cors:
        hourly.add(c, fig["hours"][c])
    rev = pygal.HorizontalBar(style=_STYLE, js=[], height=360, width=900,
                              title="Revenue by corridor (rupiah)", show_legend=False,
                              value_formatter=_rp)
    names = sorted(fig["corridors"])
    rev.x_labels = names
    rev.add("rupiah", [fig["corridors"][c]["rupiah"] for c in names])
    return [("hourly", hourly), ("revenue", rev)]


def _svg(chart):
    return chart.render(is_unicode=True, disable_xml_declaration=True)


def _rows(items, cols):
    if not items:
        return "<tr><td colspan='%d'>none</td></tr>" % len(cols)
    return "".join("<tr>%s</tr>" % "".join("<td>%s</td>" % html.escape(str(f(x)))
                                           for _, f in cols) for x in items)


def _table(title, items, cols, tid):
    head = "".join("<th>%s</th>" % html.escape(n) for n, _ in cols)
    return ("<section><h2>%s <small>(%d)</small></h2><div class='scroll'><table id='%s'>"
            "<tr>%s</tr>%s</table></div></section>" % (html.escape(title), len(items), tid,
                                                       head, _rows(items, cols)))


_CSS = """
body{font-family:system-ui,sans-serif;margin:0;padding:0 1rem 2rem;color:#1d2733;
background:#f5f7fa;max-width:1100px;margin:auto}
h1{font-size:1.4rem;margin:1rem 0 .3rem}h2{font-size:1.1rem;margin:1.4rem 0 .4rem}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(150px,1fr));gap:.6rem}
.card{background:#fff;border-radius:8px;padding:.6rem .8rem;box-shadow:0 1px 2px #0002}
.card b{display:block;font-size:1.35rem}.card span{font-size:.85rem;color:#5c7080}
.chart{background:#fff;border-radius:8px;margin:.6rem 0;box-shadow:0 1px 2px #0002}
.chart svg{width:100%;height:auto;display:block}
.scroll{overflow-x:auto}table{border-collapse:collapse;width:100%;background:#fff;
font-size:.9rem}td,th{padding:.3rem .5rem;border-bottom:1px solid #e3e8ee;text-align:left;
white-space:nowrap}.warn{color:#c23b3b}
"""

_CHECK = """<script>
// the browser says what it drew (the dashboard test reads these after load)
window.addEventListener('load', function () {
  document.querySelectorAll('.chart svg').forEach(function (s) {
    var n = 0;
    s.querySelectorAll('rect.rect').forEach(function (r) {
      var b = r.getBBox(); if (b.width > 0 && b.height > 0) n++; });
    s.parentNode.setAttribute('data-drawn', n);
    s.parentNode.setAttribute('data-width', Math.round(s.getBoundingClientRect().width));
  });
  document.body.setAttribute('data-overflow',
    document.documentElement.scrollWidth > window.innerWidth + 1 ? 'yes' : 'no');
});
</script>"""


def page(fig):
    """The dashboard as one self-contained HTML page (inline SVG charts, no external
    resources)."""
    e = html.escape
    cards = [("taps", fig["taps"], "taps decided"), ("accepted", fig["accepted"], "accepted"),
             ("revenue", fig["revenue"], "revenue"), ("devices", len(fig["devices"]),
                                                      "validators reporting"),
             ("pending", sum(p["taps"] for p in fig["pending"]), "taps pending at depots"),
             ("gaps", len(fig["gaps"]), "sequence gaps"),
             ("alarms", len(fig["alarms"]), "alarms"),
             ("fraud", len(fig["proofs_used_twice"]) + len(fig["over_allowance"]),
              "fraud flags")]
    card_html = "".join(
        "<div class='card' id='fig-%s' data-v='%d'><b>%s</b><span>%s</span></div>"
        % (k, v, _rp(v) if k == "revenue" else "{:,}".format(v).replace(",", "."), e(label))
        for k, v, label in cards)
    charts = "".join("<div class='chart' id='chart-%s'>%s</div>" % (n, _svg(c))
                     for n, c in _charts(fig))
    cor = sorted(fig["corridors"].items())
    parts = [
        _table("Corridors", cor, [("corridor", lambda x: x[0]), ("taps", lambda x: x[1]["taps"]),
                                  ("accepted", lambda x: x[1]["accepted"]),
                                  ("revenue", lambda x: _rp(x[1]["rupiah"]))], "corridors"),
        _table("Fraud flags: proofs used twice", fig["proofs_used_twice"],
               [("proof", lambda x: x[0][:16]), ("uses", lambda x: x[1]),
                ("validators", lambda x: x[2]), ("wallet", lambda x: x[3])], "twice"),
        _table("Fraud flags: passes over their offline allowance", fig["over_allowance"],
               [("pass", lambda x: x[0]), ("wallet", lambda x: x[1]),
                ("spent", lambda x: _rp(x[2])), ("allowance", lambda x: _rp(x[3]))], "over"),
        _table("Deny list", fig["deny"], [("version", lambda x: x[0]),
                                          ("cause", lambda x: x[1]),
                                          ("entries", lambda x: x[2])], "deny"),
        _table("Alarms", fig["alarms"], [("at", lambda x: _ts(x["at"])),
                                         ("kind", lambda x: x["kind"]),
                                         ("depot", lambda x: x["depot_id"] or ""),
                                         ("device", lambda x: x["device_id"] or ""),
                                         ("detail", lambda x: x["detail"])], "alarms"),
        _table("Conflicts and evidence", fig["evidence"],
               [("device", lambda x: x[0]), ("seq", lambda x: x[2]), ("why", lambda x: x[3]),
                ("depot", lambda x: x[4])], "evidence"),
        _table("Sequence gaps", fig["gaps"], [("device", lambda x: x[0]),
                                              ("missing", lambda x: "%d-%d" % (x[2], x[3]))],
               "gaps"),
        _table("Pending uploads at the depots", fig["pending"],
               [("depot", lambda x: x["depot"]), ("batches", lambda x: x["batches"]),
                ("taps", lambda x: x["taps"]), ("last error", lambda x: x["error"] or "")],
               "pending"),
        _table("Devices", fig["devices"],
               [("bus", lambda x: x["bus"]), ("route", lambda x: x["route"]),
                ("device", lambda x: x["device"]), ("depot", lambda x: x["depot"]),
                ("records", lambda x: x["records"]), ("last tap", lambda x: _ts(x["last_tap"])),
                ("last sync", lambda x: _ts(x["last_sync"])),
                ("last upload", lambda x: _ts(x["last_upload"])),
                ("unsent", lambda x: "-" if x["unsent"] is None else x["unsent"])], "devices"),
    ]
    return ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            "<title>BRT operator dashboard</title><style>%s</style></head><body>"
            "<h1>Operator dashboard</h1><p>as of %s WIB; %d records with an untrusted "
            "clock are not on the hourly chart</p><div class='cards'>%s</div>%s%s%s"
            "</body></html>" % (_CSS, _ts(fig["now"]), fig["clock_untrusted"], card_html,
                                charts, "".join(parts), _CHECK))


def depot_statuses(urls, timeout=3.0):
    """The depots' /v2/status (pending uploads, devices' last sync); a depot that does not
    answer is shown as such, never hides the page."""
    import json
    import urllib.request
    out = []
    for u in urls:
        try:
            with urllib.request.urlopen(u, timeout=timeout) as r:
                out.append(json.loads(r.read()))
        except (OSError, ValueError) as e:
            out.append({"depot_id": u, "outbox": {"last_error": "unreachable: %s" % e}})
    return out


def respond(server, authorization):
    """(status, body bytes, [(header, value)]) for GET /dashboard: the page for the operator,
    401 with a Basic challenge for anyone else (a browser on a laptop or phone asks)."""
    if not authorized(server.operator_token, authorization):
        # a JSON error like every other refusal (docs/sync-api.md), with the Basic challenge
        # that makes a browser ask for the credential
        import json
        return (401, json.dumps({"error": "operator_credential", "detail": "the dashboard "
                                 "needs the operator credential (Basic or Bearer)"}).encode(),
                [("WWW-Authenticate", 'Basic realm="BRT back office", charset="UTF-8"'),
                 ("Content-Type", "application/json")])
    fig = figures(server.store, depot_statuses(server.depot_status_urls),
                  now=server.store.clock())
    return (200, page(fig).encode(), [("Content-Type", "text/html; charset=utf-8"),
                                      ("Cache-Control", "no-store")])
