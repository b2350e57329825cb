"""`python -m host.depot COMMAND` — the depot host's command line.

  serve     run the service (validators' HTTP API + status page + uplink to the back office)
  register  add a validator (or replace its secret) in the registry
  status    devices, last sync, pending taps and batches, gaps (text or --json)
  bundle    add a signed bundle file to what validators are offered
  upload    one uplink round now (pack + send what is due), then exit
  prune     delete taps the back office acknowledged more than --days ago

Every command takes --db (default depot.db). Errors are one line on stderr, exit code 1
(bad input) or 2 (environment: store, network).
"""

import argparse
import json
import pathlib
import sys
import time

from host import bundles as hb
from host.depot.errors import DepotError
from host import cliargs
from host.depot.outbox import Uplink
from host.depot.server import DepotServer
from host.depot.store import DepotStore


def _secret(a):
    if a.secret_hex:
        try:
            return bytes.fromhex(a.secret_hex)
        except ValueError:
            raise DepotError("bad_input", "--secret-hex is not hex") from None
    if a.secret_file:
        try:
            return pathlib.Path(a.secret_file).read_bytes()
        except OSError as e:
            raise DepotError("bad_input", "cannot read %s: %s" % (a.secret_file, e.strerror)) \
                from None
    raise DepotError("bad_input", "give --secret-hex or --secret-file")


def cmd_register(a, store):
    new = store.register(a.device_id, _secret(a))
    print("%s %s" % ("registered" if new else "re-keyed", a.device_id))
    return 0


def cmd_status(a, store):
    from host.depot.server import DepotApp
    st = DepotApp(store).status()
    if a.json:
        print(json.dumps(st, indent=1))
        return 0
    ob = st["outbox"]
    print("depot %s: %d validators; uplink pending %d batches / %d taps, delivered %d taps%s"
          % (st["depot_id"], len(st["devices"]), ob["pending_batches"], ob["pending_taps"],
             ob["delivered_taps"], "; last error: %s" % ob["last_error"]
             if ob["last_error"] else ""))
    for d in st["devices"]:
        seen = time.strftime("%Y-%m-%d %H:%M", time.gmtime(d["last_seen"])) \
            if d["last_seen"] else "never"
        print("  %-20s last sync %s  taps %d  last seq %s  unsent on device %s"
              % (d["device_id"], seen, d["taps"], d["max_seq"], d["unsent_on_device"]))
    for dev, lo, hi in st["gaps"]:
        print("  GAP %s: seq %d..%d missing" % (dev, lo, hi))
    for al in st["alarms"]:
        print("  ALARM %s %s: %s" % (al["kind"], al["device_id"] or "", al["detail"]))
    return 0


def cmd_bundle(a, store):
    try:
        raw = pathlib.Path(a.file).read_bytes()
    except OSError as e:
        raise DepotError("bad_input", "cannot read %s: %s" % (a.file, e.strerror)) from None
    pub = bytes.fromhex(a.operator_pub) if a.operator_pub else None
    try:
        b = hb.parse_bundle(raw, pub)
    except hb.BundleError as e:
        raise DepotError("bad_input", "bundle %s refused: %s" % (a.file, e)) from None
    if b.kind not in (hb.TRUST, hb.DENY, hb.FARES, hb.CONFIG):
        raise DepotError("bad_input", "only kinds 1-4 are served to validators")
    if b.kind == hb.CONFIG:  # validators would refuse it: say so here, not on the bus
        import cbor2
        try:
            hb.check_config(cbor2.loads(b.body))
        except (ValueError, cbor2.CBORDecodeError) as e:
            raise DepotError("bad_input", "config bundle body: %s" % e) from None
    store.add_bundle(b.kind, b.version, raw)
    print("added %s bundle version %d (%d bytes)" % (hb.KIND_NAMES[b.kind], b.version, len(raw)))
    return 0


def cmd_prune(a, store):
    if a.days < 1:
        raise DepotError("bad_input", "--days must be at least 1")
    n = store.prune(time.time() - a.days * 86400)
    print("pruned %d taps delivered more than %d days ago" % (n, a.days))
    return 0


def _uplink(a, store):
    if not a.backoffice:
        return None
    secret = _secret(a)
    key = hb.load_private_key(a.operator_key) if a.operator_key else None
    return Uplink(store, a.backoffice, secret, operator_key=key)


def cmd_upload(a, store):
    up = _uplink(a, store)
    if up is None:
        raise DepotError("bad_input", "--backoffice URL required")
    sent = up.run_once()
    print("sent %d batches%s" % (sent, "; last error: %s" % up.last_error
                                 if up.last_error else ""))
    return 0 if up.last_error is None else 2


def cmd_serve(a, store):
    if a.depot_id:
        store.set_meta("depot_id", a.depot_id)
    up = _uplink(a, store)
    srv = DepotServer(store, a.host, a.port, outbox=up).start()
    if up is not None:
        pub = hb.public_bytes(up.operator_key) if up.operator_key else None
        up.start(interval=a.interval, operator_pub=pub)
    print("depot %s serving on %s (status page: %s/)" % (store.meta("depot_id"), srv.url,
                                                         srv.url), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        if up is not None:
            up.stop()
        srv.stop()
    return 0


def parser():
    p = argparse.ArgumentParser(prog="python -m host.depot", description=__doc__.split("\n")[0])
    p.add_argument("--db", default="depot.db",
                   help="SQLite store (created if missing; `status` needs an existing one)")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="run the depot service")
    s.add_argument("--host", default="0.0.0.0")
    s.add_argument("--port", type=cliargs.port, default=8080)
    s.add_argument("--depot-id")
    s.add_argument("--backoffice", help="back office URL (omit: taps wait in the outbox)")
    s.add_argument("--secret-hex", help="this depot's secret shared with the back office")
    s.add_argument("--secret-file")
    s.add_argument("--operator-key", help="operator private key PEM: sign merged deny lists")
    s.add_argument("--interval", type=float, default=5.0, help="uplink round interval, s")
    r = sub.add_parser("register", help="add or re-key a validator")
    r.add_argument("device_id")
    r.add_argument("--secret-hex")
    r.add_argument("--secret-file")
    st = sub.add_parser("status", help="devices, pending, gaps")
    st.add_argument("--json", action="store_true")
    b = sub.add_parser("bundle", help="offer a signed bundle file to validators")
    b.add_argument("file")
    b.add_argument("--operator-pub", help="hex public key: verify before adding")
    u = sub.add_parser("upload", help="one uplink round now")
    u.add_argument("--backoffice", required=True)
    u.add_argument("--secret-hex")
    u.add_argument("--secret-file")
    u.add_argument("--operator-key")
    pr = sub.add_parser("prune", help="delete taps delivered to the back office long ago")
    pr.add_argument("--days", type=int, default=30)
    return p


COMMANDS = {"prune": cmd_prune, "serve": cmd_serve, "register": cmd_register, "status": cmd_status,
            "bundle": cmd_bundle, "upload": cmd_upload}


def main(argv=None):
    a = parser().parse_args(argv)
    if a.cmd == "status" and not pathlib.Path(a.db).exists():
        # a mistyped --db must not report an empty depot (and leave a new store behind)
        print("depot: no store at %s (serve or register creates one)" % a.db, file=sys.stderr)
        return 2
    try:
        store = DepotStore(a.db).open()
    except DepotError as e:
        print("depot: %s" % e, file=sys.stderr)
        return 2
    try:
        return COMMANDS[a.cmd](a, store)
    except hb.BundleError as e:
        print("depot: %s" % e, file=sys.stderr)
        return 1
    except DepotError as e:
        print("depot: %s" % e, file=sys.stderr)
        return 2 if e.status >= 500 else 1
    except OSError as e:
        print("depot: %s" % e, file=sys.stderr)
        return 2
    finally:
        store.close()


if __name__ == "__main__":
    sys.exit(main())
