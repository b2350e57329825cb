"""The firmware sync client against a depot that answers garbage, lies or stalls: every case
ends in a typed SyncError reason and a backoff, and no journal record is acknowledged
that the depot did not durably store (here: none)."""

import json
import socket
import threading

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from tests.host.sync_support import Validator

HELLO_OK = b'{"time": 1790000000, "bundles": []}'


def http(body, status=b"200 OK", extra=b""):
    return (b"HTTP/1.1 " + status + b"\r\nContent-Length: %d\r\n" % len(body) + extra +
            b"Connection: close\r\n\r\n" + body)


def _read_request(c):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = c.recv(4096)
        if not chunk:
            return
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    n = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            n = int(line.split(b":")[1])
    while len(body) < n:
        chunk = c.recv(4096)
        if not chunk:
            return
        body += chunk


class RawServer:
    """Answers each connection with answers[i] (bytes; None = accept and stay silent)."""

    def __init__(self):
        self.answers = []
        self.default = b""
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = "http://127.0.0.1:%d" % self.sock.getsockname()[1]
        self.held = []
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            ans = self.answers.pop(0) if self.answers else self.default
            if ans is None:
                self.held.append(c)
                continue
            try:
                c.settimeout(2)
                _read_request(c)  # all of it: closing on unread data would reset the link
                c.sendall(ans)
            except OSError:
                pass
            c.close()

    def close(self):
        self.sock.close()
        for c in self.held:
            c.close()


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    srv = RawServer()
    v = Validator(tmp_path_factory.mktemp("badinput"), srv.url, timeout_ms=700)
    v.gen(10)
    yield srv, v
    v.close()
    srv.close()


CASES = [
    ([b"garbage\r\n\r\n"], "protocol"),
    ([b"HTTP/1.1 200 OK\r\n\r\n"], "protocol"),                       # no Content-Length
    ([b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"], "protocol"),
    ([http(b"{bad")], "protocol"),                                       # not JSON
    ([http(b"{}")[:-1]], "cut"),                                         # body cut short
    ([b"HTTP/1.1 200 OK\r\n" + b"X: " + b"a" * 3000], "too_large"),      # endless head
    ([http(b"x" * 2000)], "too_large"),                                  # body beyond buffer
    ([http(b'{"error": "internal"}', b"500 Oops")], "http_500"),
    ([None], "timeout"),                                                 # silent depot
    ([b""], "cut"),                                                      # closed at once
    # a lying depot: a proper hello, then an ack for records never sent
    ([http(HELLO_OK), http(b'{"acked": 999999}')], "protocol"),
    ([http(HELLO_OK), http(b'{"acked": "10"}')], "protocol"),
    # a fake depot: the right number acknowledged, but not MAC'd with the sync key
    ([http(HELLO_OK), http(b'{"acked": 10}')], "bad_ack"),
    ([http(HELLO_OK), http(b'{"acked": 10, "ack_mac": "' + b"00" * 32 + b'"}')], "bad_ack"),
    ([http(b"0")], "protocol"),                                          # JSON, not an object
    ([http(b'{"time": 1, "bundles": 5}')], "protocol"),
    ([http(b'{"time": 1, "bundles": [7]}')], "protocol"),
    ([http(b'{"time": 1, "bundles": [{"kind": 3, "version": 9, '
           b'"path": "/v2/bundles/3/9 HTTP/1.1\\r\\nX: y"}]}')], "protocol"),  # injection
]


@pytest.mark.parametrize("answers,reason", CASES)
def test_bad_depot_answers(rig, answers, reason):
    srv, v = rig
    srv.answers = list(answers)
    srv.default = b""
    r = v.sync(max_ms=5000, stop_on_fail=True)  # ends at the first failure
    assert r["state"] == 5, r
    assert r["last_error"].split(":")[0] == reason, r
    assert r["unsent"] == 10 and r["acked"] == -1  # nothing acknowledged


JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.text(max_size=20),
                    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c,
                                                                         max_size=4),
                    max_leaves=12)
HELLOISH = st.fixed_dictionaries({}, optional={
    "time": JSON, "bundles": st.lists(st.fixed_dictionaries({}, optional={
        "kind": st.integers(0, 6) | JSON, "version": st.integers(0, 9) | JSON,
        "path": st.sampled_from(["/v2/bundles/3/1", "/x", "/v2/bundles/a"]) | JSON}),
        max_size=3) | JSON,
    # never the one right answer (10, the last seq the rig holds): a depot that says
    # exactly that is indistinguishable from an honest one
    "acked": JSON.filter(lambda x: x != 10)})


@settings(max_examples=80, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=400),
                 st.builds(lambda b, s: http(b, s), st.binary(max_size=300),
                           st.sampled_from([b"200 OK", b"206 Partial", b"404 Nope"])),
                 st.builds(lambda j: http(json.dumps(j).encode()), HELLOISH | JSON)),
       st.lists(st.builds(lambda j: http(json.dumps(j).encode()), HELLOISH), max_size=2))
def test_generated_depot_answers(rig, answer, more):
    srv, v = rig
    srv.answers = [answer] + more
    srv.default = b""
    r = v.sync(max_ms=5000, stop_on_fail=True)
    assert r["state"] in (5, 6), r  # a typed failure (or a harmless valid answer)
    assert r["unsent"] == 10 and r["acked"] == -1, r
    if r["state"] == 5:
        assert r["last_error"].split(":")[0] in {
            "protocol", "cut", "too_large", "timeout", "connect"} or \
            r["last_error"].startswith("http_"), r
