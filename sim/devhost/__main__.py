"""`python -m sim.devhost`: run a device host on its own, e.g. to tap a real phone.

    python -m sim.devhost --port 7700 --nfc usb:054c:06c3 --control-port 7701
    BRT_DEVHOST=127.0.0.1:7700 MICROPYPATH=firmware:sim/vboard .venv/bin/micropython ...

--nfc takes any nfcpy device path (usb:…, tty:…, udp:host:port); without it phones are
presented through the control API. --control-port serves the control API as JSON lines
over TCP (one request object per line, one answer per line; see docs/simulator.md).
"""

import argparse
import json
import socket
import sys
import threading
import time

from .control import dispatch
from .host import DevHost


def serve_control(host, port):
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(4)

    def client(conn):
        with conn, conn.makefile("rwb") as f:
            for line in f:
                try:
                    req = json.loads(line)
                except ValueError:
                    ans = {"error": "not JSON"}
                else:
                    ans = dispatch(host, req)
                f.write(json.dumps(ans).encode() + b"\n")
                f.flush()

    def loop():
        while True:
            conn, _ = srv.accept()
            threading.Thread(target=client, args=(conn,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()
    return srv.getsockname()[1]


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m sim.devhost", description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0, help="link port (0: any free port)")
    ap.add_argument("--unique-id", default="240ac4000001", help="machine.unique_id() as hex")
    ap.add_argument("--pn532-bus", choices=("hsu", "i2c"), default="hsu")
    ap.add_argument("--nfc", metavar="PATH", help="nfcpy device path for the PN532's RF side")
    ap.add_argument("--control-port", type=int, help="serve the control API (JSON lines)")
    a = ap.parse_args(argv)
    try:
        uid = bytes.fromhex(a.unique_id)
    except ValueError:
        print("error: --unique-id must be hex", file=sys.stderr)
        return 2
    antenna = None
    if a.nfc:
        try:
            from .nfcpy_rf import NfcpyAntenna
            antenna = NfcpyAntenna(a.nfc)
        except (IOError, OSError, ValueError) as e:
            print("error: cannot open nfcpy device %r: %s" % (a.nfc, e), file=sys.stderr)
            return 1
    host = DevHost(unique_id=uid, pn532_bus=a.pn532_bus, port=a.port, antenna=antenna)
    try:
        addr = host.start()
    except OSError as e:
        print("error: cannot listen on port %d: %s" % (a.port, e), file=sys.stderr)
        return 1
    print("BRT_DEVHOST=%s" % addr, flush=True)
    if a.control_port is not None:
        try:
            print("control port %d" % serve_control(host, a.control_port), flush=True)
        except OSError as e:
            print("error: control port: %s" % e, file=sys.stderr)
            return 1
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        host.stop()
        return 0


if __name__ == "__main__":
    sys.exit(main())
