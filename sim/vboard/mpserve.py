# The request loop of the simulator's MicroPython workers (sim/fleet_mp.py, the validator's
# host-test worker tests/host/app_worker_mp.py): one JSON request per stdin line, one
# "@@J {json}" answer line - the prefix tells it apart from anything else the firmware
# prints. An exception is answered {"error": traceback} and the worker keeps serving; the
# host side stops on it. (tests/host/mp_serve.py is the sync harness's loop: plain JSON
# lines, {"exc": ...}.)
import io
import json
import sys


def serve(ops, on_cut=None):
    """Answer {"op": name, ...} with ops[name](request) until stdin closes. on_cut: the
    answer to a flashdev.PowerCut (a BaseException: it is not an error), or None to let it
    end the worker."""
    from flashdev import PowerCut
    while True:
        line = sys.stdin.readline()
        if not line:
            return
        req = json.loads(line)
        op = req["op"]
        try:
            fn = ops.get(op)
            ans = fn(req) if fn is not None else {"error": "unknown op " + op}
        except PowerCut:
            if on_cut is None:
                raise
            ans = on_cut()
        except Exception as e:  # noqa: BLE001 - one line to the host, which stops on it
            buf = io.StringIO()
            sys.print_exception(e, buf)  # type: ignore[attr-defined]
            ans = {"error": buf.getvalue()}
        print("@@J", json.dumps(ans))
