"""The request loop of the MicroPython test workers (sync_validator.py, depot_link_mp.py):
one JSON request a line on stdin, one JSON answer a line on stdout. An exception is answered
as {"exc": type, message and traceback} and the worker keeps serving, so a test sees the
firmware's own error instead of a dead pipe."""

import json
import sys


def serve(ops):
    """Answer requests {"op": name, ...} with ops[name](request) until stdin closes."""
    while True:
        line = sys.stdin.readline()
        if not line:
            break
        try:
            req = json.loads(line)
            out = ops[req["op"]](req)
        except Exception as e:  # noqa: BLE001 - report to the test, keep serving
            import io
            tb = io.StringIO()
            sys.print_exception(e, tb)
            out = {"exc": "%s: %s\n%s" % (type(e).__name__, e, tb.getvalue())}
        print(json.dumps(out))
