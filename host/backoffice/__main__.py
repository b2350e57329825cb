"""`python -m host.backoffice COMMAND` — the reference back office's command line.

  serve           HTTP API for depots (batches in, deny deltas out, report)
  register-depot  add a depot and its shared secret
  register-validator  a validator, the depot(s) that may report for it, its record key
  register-pass   issuer data: a pass's wallet and offline allowance (rupiah)
  report          settlement per wallet, proofs used twice, passes over allowance (JSON)
  status          alarms, evidence kept aside, sequence gaps (JSON)
  publish         sign a deny-list delta for what the analysis found (operator key)

--store is a SQLite path (default backoffice.db), `sqlite:PATH`, or a PostgreSQL conninfo
(`postgresql://user@host/db` or `host=/run/postgresql dbname=bo`). Errors: one line, exit 1/2.
"""

import argparse
import json
import os
import sys
import time

from host import bundles as hb
from host.backoffice.server import BackofficeServer, report, status
from host.backoffice.store import BackofficeError, open_store
from host import cliargs


def _hex(s, what):
    try:
        return bytes.fromhex(s)
    except ValueError:
        raise BackofficeError("bad_input", "%s is not hex" % what) from None


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m host.backoffice")
    p.add_argument("--store", default="backoffice.db")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=cliargs.port, default=8090)
    s.add_argument("--operator-key", help="PEM: publish deny deltas every --interval s")
    s.add_argument("--interval", type=float, default=60.0)
    s.add_argument("--operator-token-file",
                   help="file holding the operator credential for /v2/report and /dashboard "
                        "(else $BRT_OPERATOR_TOKEN; neither: those pages answer 401)")
    r = sub.add_parser("register-depot")
    r.add_argument("depot_id")
    r.add_argument("secret_hex")
    rv = sub.add_parser("register-validator")
    rv.add_argument("device_id")
    rv.add_argument("--depot", action="append", required=True,
                    help="a depot that may report for it (repeat for several)")
    rv.add_argument("--secret-hex", help="the device secret S (only the record key is kept)")
    rv.add_argument("--record-key-hex", help="the record key, derived elsewhere")
    sub.add_parser("status")
    rp = sub.add_parser("register-pass")
    rp.add_argument("pass_hex")
    rp.add_argument("wallet_hex")
    rp.add_argument("allowance", type=int)
    sub.add_parser("report")
    pb = sub.add_parser("publish")
    pb.add_argument("--operator-key", required=True)
    a = p.parse_args(argv)
    try:
        store = open_store(a.store)
    except BackofficeError as e:
        print("backoffice: %s" % e, file=sys.stderr)
        return 2
    try:
        if a.cmd == "register-depot":
            store.register_depot(a.depot_id, _hex(a.secret_hex, "secret"))
            print("registered depot %s" % a.depot_id)
        elif a.cmd == "register-validator":
            if bool(a.secret_hex) == bool(a.record_key_hex):
                raise BackofficeError("bad_input", "give --secret-hex or --record-key-hex")
            store.register_validator(
                a.device_id, a.depot,
                secret=_hex(a.secret_hex, "secret") if a.secret_hex else None,
                record_key=_hex(a.record_key_hex, "record key") if a.record_key_hex else None)
            print("registered validator %s (depots: %s)" % (a.device_id, ", ".join(a.depot)))
        elif a.cmd == "status":
            print(json.dumps(status(store), indent=1))
        elif a.cmd == "register-pass":
            store.register_pass(_hex(a.pass_hex, "pass id"), _hex(a.wallet_hex, "wallet id"),
                                a.allowance)
            print("registered pass %s" % a.pass_hex)
        elif a.cmd == "report":
            print(json.dumps(report(store), indent=1))
        elif a.cmd == "publish":
            v = store.publish(hb.load_private_key(a.operator_key))
            print("published deny delta version %d" % v if v else "nothing new to deny")
        else:
            key = hb.load_private_key(a.operator_key) if a.operator_key else None
            srv = BackofficeServer(store, a.host, a.port)
            # the operator credential: rider data (/v2/report, /dashboard) needs it
            srv.operator_token = os.environ.get("BRT_OPERATOR_TOKEN", "").strip() or None
            if a.operator_token_file:
                try:
                    with open(a.operator_token_file) as f:
                        srv.operator_token = f.read().strip() or None
                except OSError as e:
                    raise BackofficeError("bad_input", "operator token file: %s" % e) from None
            if srv.operator_token is not None and len(srv.operator_token) < 16:
                raise BackofficeError("bad_input", "the operator credential needs at least "
                                      "16 characters")
            srv.start()
            print("back office (%s) serving on %s%s" % (
                store.be.name, srv.url, "" if srv.operator_token else " (no operator "
                "credential: /v2/report and /dashboard answer 401)"), flush=True)
            try:
                while True:
                    time.sleep(a.interval)
                    if key is not None:
                        try:  # a failing round is reported and retried, never a crash loop
                            store.publish(key)
                        except Exception as e:  # noqa: BLE001 - keep serving and reporting
                            print("backoffice: publish failed: %s: %s" % (type(e).__name__, e),
                                  file=sys.stderr, flush=True)
            except KeyboardInterrupt:
                pass
            finally:
                srv.stop()
        return 0
    except (BackofficeError, hb.BundleError) as e:
        print("backoffice: %s" % e, file=sys.stderr)
        return 1
    finally:
        store.close()


if __name__ == "__main__":
    sys.exit(main())
