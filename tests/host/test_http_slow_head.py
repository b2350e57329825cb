"""The HTTP edge's head deadline (host/httpservice.py HEAD_TIMEOUT_S): a client that
opens a connection and sends nothing, or trickles its request head a byte at a time,
gets a JSON 408 and the connection closes - uvicorn's keep-alive timer restarts at each
byte and would keep it open for ever. A head that arrived in time is not cut, however
slow its body (that is BODY_TIMEOUT_S's business), and keep-alive's next head gets its
own deadline. Real sockets on loopback against the depot's server."""

import json
import socket
import time

import pytest

from host import httpservice
from host.depot.server import DepotServer
from host.depot.store import DepotStore

DEADLINE = 1.0


@pytest.fixture()
def depot(tmp_path, monkeypatch):
    monkeypatch.setattr(httpservice, "HEAD_TIMEOUT_S", DEADLINE)
    ds = DepotStore(str(tmp_path / "depot.db")).open()
    ds.set_meta("depot_id", "depot-A")
    d = DepotServer(ds).start()
    yield d
    d.stop()


def _read_all(s, limit=10.0):
    s.settimeout(limit)
    out = b""
    while True:
        try:
            b = s.recv(4096)
        except (socket.timeout, ConnectionResetError):
            return out
        if not b:
            return out
        out += b


def _status_and_json(ans):
    head, _, body = ans.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


def test_a_silent_connection_gets_408_and_is_closed(depot):
    with socket.create_connection(("127.0.0.1", depot.port)) as s:
        t0 = time.monotonic()
        ans = _read_all(s)
        took = time.monotonic() - t0
    assert _status_and_json(ans) == (408, {"error": "timeout",
                                           "detail": "request head not received in time"})
    assert DEADLINE * 0.9 <= took < DEADLINE + 3, took


def test_a_trickled_head_is_cut_at_the_deadline(depot):
    head = b"GET /v2/nothing HTTP/1.1\r\nHost: depot\r\nX-Slow: " + b"a" * 40
    with socket.create_connection(("127.0.0.1", depot.port)) as s:
        t0 = time.monotonic()
        sent = 0
        s.settimeout(0.05)
        closed = b""
        while time.monotonic() - t0 < DEADLINE + 3 and sent < len(head):
            try:
                s.sendall(head[sent:sent + 1])
            except OSError:
                break
            sent += 1
            try:
                closed = s.recv(4096)
                if closed:
                    break
            except socket.timeout:
                pass
            time.sleep(0.05)
        ans = closed + _read_all(s)
    assert sent < len(head)                      # cut before the head was complete
    assert _status_and_json(ans)[0] == 408, ans


def test_a_complete_head_with_a_slow_body_is_not_cut(depot):
    with socket.create_connection(("127.0.0.1", depot.port)) as s:
        s.sendall(b"POST /v2/sync/val-1/hello HTTP/1.1\r\nHost: depot\r\n"
                  b"Content-Length: 2\r\nConnection: close\r\n\r\n")
        time.sleep(DEADLINE * 1.5)               # past the head deadline, within 15 s
        s.sendall(b"{}")
        status, body = _status_and_json(_read_all(s))
    assert status != 408 and status < 500, (status, body)


def test_keep_alive_next_head_has_its_own_deadline(depot):
    with socket.create_connection(("127.0.0.1", depot.port)) as s:
        s.sendall(b"GET /v2/nothing HTTP/1.1\r\nHost: depot\r\n\r\n")
        s.settimeout(5)
        first = s.recv(65536)
        assert first.startswith(b"HTTP/1.1 404"), first
        s.sendall(b"GET /v2/noth")               # the next head, never finished
        both = first + _read_all(s)
    # the 404 (the connection stayed open), then the 408 for the unfinished second head
    i = both.index(b"HTTP/1.1 408")
    assert both[:i].count(b"HTTP/1.1 ") == 1 and b'"not_found"' in both[:i], both
    assert _status_and_json(both[i:])[0] == 408
