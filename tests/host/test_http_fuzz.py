"""Both HTTP edges under hostile input (issue 16): hypothesis sends raw HTTP/1.1 requests
(methods, paths, headers and bodies, valid and not, authenticated and not) to the depot and
the back office over loopback. Every answer must be below 500, every refusal a JSON
`{"error", "detail"}`; afterwards a valid sync still works end to end (validator batch to
the depot, the depot's uplink to the back office, the operator's report).

Plus the probes that found 500s: a 64-byte non-ASCII MAC, a hello of 4,000 `[` (with a good
MAC), a non-ASCII MAC and 8 MB of nested JSON at the back office, a head above the limit, a
non-ASCII request target."""

import json
import socket
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from host import synckeys
from host.backoffice.server import BackofficeServer, batch_mac
from host.backoffice.store import open_store
from host.depot import wire
from host.depot.outbox import Uplink
from host.depot.server import DepotServer
from host.depot.store import DepotStore
from tests.host.sync_support import tagged

SECRET = b"s" * 32
SYNC_KEY = synckeys.derive(SECRET, synckeys.SYNC)
DEPOT_SECRET = b"D" * 32
TOKEN = "operator-credential-0123"


@pytest.fixture(scope="module")
def edges(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    ds = DepotStore(str(tmp / "depot.db")).open()
    ds.set_meta("depot_id", "depot-A")
    ds.register("val-1", SECRET)
    bo = open_store(tmp / "bo.db")
    bo.register_depot("depot-A", DEPOT_SECRET)
    bo.register_validator("val-1", ["depot-A"], secret=SECRET)
    d = DepotServer(ds).start()
    b = BackofficeServer(bo, operator_token=TOKEN).start()
    yield ds, d, bo, b
    d.stop()
    b.stop()
    bo.close()


def raw(port, data, timeout=20):
    """Send bytes, read the whole answer (the servers close after each exchange)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            s.sendall(data)
        except OSError:
            pass  # the server may answer and close before it read everything (a 413)
        chunks = []
        try:
            while True:
                c = s.recv(65536)
                if not c:
                    break
                chunks.append(c)
        except ConnectionResetError:
            pass
    out = b"".join(chunks)
    head, _, body = out.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.1 ") else None
    return status, head, body


def request(method, path, headers=(), body=b"", length=True):
    h = [b"%s %s HTTP/1.1" % (method, path), b"Host: 127.0.0.1"]
    h += [k + b": " + v for k, v in headers]
    if length:
        h.append(b"Content-Length: %d" % len(body))
    h.append(b"Connection: close")
    return b"\r\n".join(h) + b"\r\n\r\n" + body


def check(answer, method=b"GET"):
    status, head, body = answer
    assert status is not None, head[:200]          # an HTTP answer, not a dropped connection
    assert status < 500, (status, head[:300], body[:300])
    if status >= 400 and method != b"HEAD":        # (an answer to HEAD has no body)
        err = json.loads(body)
        assert isinstance(err["error"], str) and "detail" in err, body[:300]
    return status


# --- strategies -------------------------------------------------------------------------------
DEPOT_PATHS = [b"/", b"/v2/time", b"/v2/status", b"/v2/sync/val-1/hello",
               b"/v2/sync/val-1/batch", b"/v2/sync/val-1/report", b"/v2/sync/nobody/hello",
               b"/v2/bundles/1/1", b"/v2/bundles/99999/1", b"/v1/sync/val-1/hello",
               b"/v2/sync/%C3%A9/hello", b"/v2/sync/" + b"x" * 70 + b"/hello"]
BO_PATHS = [b"/", b"/v2/batches", b"/v2/report", b"/v2/status", b"/dashboard",
            b"/v2/deny/deltas?since=0", b"/v2/deny/deltas?since=-1", b"/v1/batches",
            b"/v2/deny/deltas?since=99999999999"]
METHODS = st.sampled_from([b"GET", b"POST", b"PUT", b"DELETE", b"HEAD", b"OPTIONS",
                           b"PATCH", b"BREW"])
hdr_value = st.binary(max_size=80).map(lambda v: v.replace(b"\r", b"").replace(b"\n", b""))
HEADERS = st.lists(st.tuples(st.sampled_from([
    b"X-BRT-MAC", b"X-BRT-Depot", b"Idempotency-Key", b"Authorization", b"Range",
    b"Content-Type", b"Transfer-Encoding", b"Expect", b"X-Other"]), hdr_value), max_size=4)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2 ** 70, max_value=2 ** 70) |
    st.floats(allow_nan=False) | st.text(max_size=20),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=12)
hello_like = st.fixed_dictionaries({}, optional={
    "v": st.sampled_from([2, 1, "2", True, 2.0]), "nonce": st.sampled_from(["00" * 16, "zz", 5]),
    "time": json_values, "trusted": json_values, "inc": json_values, "last_seq": json_values,
    "unsent": json_values, "have": json_values})
BODIES = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    hello_like.map(lambda v: json.dumps(v).encode()),
    st.integers(1, 3000).map(lambda n: b"[" * n),
    st.integers(1, 500).map(lambda n: b'{"a":' * n + b"1" + b"}" * n))


def _signed_headers(server, body, mac_mode):
    if mac_mode == "good" and server == "depot":
        return [(b"X-BRT-MAC", wire.mac(SYNC_KEY, body).encode())]
    if mac_mode == "good":
        return [(b"X-BRT-Depot", b"depot-A"), (b"Idempotency-Key", b"depot-A:0:1"),
                (b"X-BRT-MAC", batch_mac(DEPOT_SECRET, body).encode())]
    return []


@settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck))
@given(server=st.sampled_from(["depot", "bo"]), method=METHODS, data=st.data(),
       headers=HEADERS, body=BODIES, mac_mode=st.sampled_from(["good", "none"]),
       length=st.booleans())
def test_no_5xx_for_any_request(edges, server, method, data, headers, body, mac_mode, length):
    _ds, d, _bo, b = edges
    paths = DEPOT_PATHS if server == "depot" else BO_PATHS
    path = data.draw(st.one_of(st.sampled_from(paths), st.binary(min_size=1, max_size=60).map(
        lambda p: b"/" + p.replace(b" ", b"").replace(b"\r", b"").replace(b"\n", b""))))
    port = d.port if server == "depot" else b.port
    check(raw(port, request(method, path, _signed_headers(server, body, mac_mode) + headers,
                            body, length or method == b"POST" and not headers)), method)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=st.text(alphabet=string.printable + "éü€\u0000", max_size=200))
def test_no_5xx_for_any_request_line(edges, text):
    _ds, d, _bo, b = edges
    for port in (d.port, b.port):
        line = text.encode("utf-8", "surrogatepass")
        status, head, body = raw(port, line + b"\r\n\r\n")
        if status is not None:  # h11 may also just close on garbage before a request line
            check((status, head, body))


def test_the_probes_that_found_500s(edges):
    _ds, d, _bo, b = edges
    hello = json.dumps({"v": 2, "nonce": "00" * 16, "trusted": True}).encode()
    # the depot: a 64-byte non-ASCII MAC for a device its status page lists
    ans = raw(d.port, request(b"POST", b"/v2/sync/val-1/hello", [(b"X-BRT-MAC", b"\xe9" * 64)],
                              hello))
    assert check(ans) == 401 and json.loads(ans[2])["error"] == "bad_mac"
    # a hello of 4,000 '[' with a good MAC: malformed, not a RecursionError
    deep = b"[" * 4000
    ans = raw(d.port, request(b"POST", b"/v2/sync/val-1/hello",
                              [(b"X-BRT-MAC", wire.mac(SYNC_KEY, deep).encode())], deep))
    assert check(ans) == 400 and json.loads(ans[2])["error"] == "malformed"
    # the back office: a non-ASCII MAC, then 8 MB of nested JSON under a good MAC
    body = b"{}"
    ans = raw(b.port, request(b"POST", b"/v2/batches", [
        (b"X-BRT-Depot", b"depot-A"), (b"Idempotency-Key", b"k"), (b"X-BRT-MAC", b"\xff" * 64)],
        body))
    assert check(ans) == 401
    nested = b"[" * (4 * 1024 * 1024) + b"]" * (4 * 1024 * 1024)
    ans = raw(b.port, request(b"POST", b"/v2/batches", [
        (b"X-BRT-Depot", b"depot-A"), (b"Idempotency-Key", b"k"),
        (b"X-BRT-MAC", batch_mac(DEPOT_SECRET, nested).encode())], nested))
    assert check(ans) == 400
    # above the body limit: 413 before reading it
    ans = raw(b.port, b"POST /v2/batches HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n"
              b"Connection: close\r\n\r\n")
    assert check(ans) == 413
    # a head above MAX_HEAD, a non-ASCII request target, no Content-Length on a POST
    for port in (d.port, b.port):
        assert check(raw(port, request(b"GET", b"/v2/status", [(b"X-Pad", b"a" * 20000)]))) \
            in (400, 431)   # 400 from h11 if the head came in pieces, else 431
        assert check(raw(port, b"GET /v2/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n")) == 400
    assert check(raw(d.port, request(b"POST", b"/v2/sync/val-1/hello", [], b"", False))) == 411
    # the report shows rider data: the operator credential or 401
    assert check(raw(b.port, request(b"GET", b"/v2/report"))) == 401
    assert check(raw(b.port, request(b"GET", b"/v2/report", [
        (b"Authorization", b"Bearer \xff" * 30)]))) == 401
    assert check(raw(b.port, request(b"GET", b"/v2/report", [
        (b"Authorization", b"Bearer " + TOKEN.encode())]))) == 200
    assert check(raw(b.port, request(b"GET", b"/"))) == 200
    ans = raw(b.port, request(b"GET", b"/dashboard"))   # JSON refusal, the Basic challenge
    assert check(ans) == 401 and b"www-authenticate: Basic" in ans[1]


def test_a_valid_sync_works_after_the_fuzz(edges):
    """Run last in this file (pytest keeps the order): the depot and the back office still
    take a validator's batch, acknowledge it, deliver it and report it."""
    ds, d, bo, b = edges
    import urllib.request
    recs = tagged("val-1", 7, [(1, 1760000001, _tap(1)), (2, 1760000002, _tap(2))],
                  key=synckeys.derive(SECRET, synckeys.RECORD))
    body = wire.encode_batch("val-1", 7, 1760000003, recs)
    mac = wire.mac(SYNC_KEY, body)
    req = urllib.request.Request(d.url + "/v2/sync/val-1/batch", data=body, method="POST",
                                 headers={"X-BRT-MAC": mac})
    with urllib.request.urlopen(req, timeout=10) as r:
        ans = json.loads(r.read())
    assert ans["acked"] == 2 and ans["ack_mac"] == synckeys.ack_mac(SYNC_KEY,
                                                                    bytes.fromhex(mac), 2)
    assert Uplink(ds, b.url, DEPOT_SECRET).run_once() >= 1
    req = urllib.request.Request(b.url + "/v2/report",
                                 headers={"Authorization": "Bearer " + TOKEN})
    with urllib.request.urlopen(req, timeout=10) as r:
        rep = json.loads(r.read())
    assert rep["settlement"].get(b"WALLET01".hex()) == {"taps": 2, "rupiah": 7000}, (rep, bo.alarms())


def _tap(i):
    import cbor2
    return cbor2.dumps({1: 1760000000 + i, 2: 0, 3: 2, 4: 0, 5: 0, 6: b"WALLET01",
                        7: b"PASS0001", 8: 0, 9: 3500, 10: bytes([i]) * 16, 11: 1})
