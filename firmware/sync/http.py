# One HTTP/1.1 exchange over a non-blocking socket, advanced in small steps.
#
# The validator's loop must keep answering taps while it syncs, so nothing here waits:
# each step() does at most one connect check, one send or one receive of at most CHUNK
# bytes (plus handing those bytes to a sink), then returns. A request is one connection
# (`Connection: close`), so a cut at any point simply fails the exchange; the client
# above decides what to retry. Buffers are allocated once per Exchange.
import errno
import select
import socket

from micropython import const

CHUNK = const(512)
RBUF = const(1536)  # response head + small JSON bodies

# states
IDLE = const(0)
CONNECTING = const(1)
SENDING = const(2)
HEAD = const(3)
BODY = const(4)
DONE = const(5)

_AGAIN = (errno.EAGAIN, errno.EINPROGRESS, errno.ETIMEDOUT)


class SyncError(Exception):
    """reason: connect, cut, timeout, http_<status>, protocol, too_large, bad_url, ..."""

    def __init__(self, reason, detail=""):
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail


def parse_url(url):
    """'http://host:port[/]' -> (host, port). Only plain HTTP: the depot LAN is the boundary."""
    if not url.startswith("http://"):
        raise SyncError("bad_url", url)
    rest = url[7:]
    slash = rest.find("/")
    if slash >= 0:
        rest = rest[:slash]
    colon = rest.find(":")
    if colon < 0:
        return rest, 80
    try:
        port = int(rest[colon + 1:])
    except ValueError:
        raise SyncError("bad_url", url)
    if not 0 < port < 65536:
        raise SyncError("bad_url", url)
    return rest[:colon], port


class Exchange:
    def __init__(self):
        self.rbuf = bytearray(RBUF)
        self.state = IDLE
        self.sock = None
        self.poll = select.poll()
        self.status = 0
        self.length = 0
        self.got = 0
        self.n = 0

    def begin(self, addr, head, body, sink, now_ms, deadline_ms):
        """Start a request: `head` (bytes), `body` (bytes/memoryview or None), `sink`
        (object with feed(mv), for streamed bodies) or None (body kept in rbuf)."""
        self.close()
        self.head = head
        self.body = body
        self.sink = sink
        self.sent = 0
        self.n = 0
        self.got = 0
        self.status = 0
        self.length = -1
        self.deadline = deadline_ms
        self.started = now_ms
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        self.sock = s
        try:
            s.connect(addr)
        except OSError as e:
            if e.errno not in _AGAIN:
                self.close()
                raise SyncError("connect", str(e.errno))
        self.poll.register(s, select.POLLOUT)
        self.state = CONNECTING

    def close(self):
        if self.sock is not None:
            try:
                self.poll.unregister(self.sock)
            except (OSError, KeyError, ValueError):
                pass
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None
        self.state = IDLE

    def _fail(self, reason, detail=""):
        self.close()
        raise SyncError(reason, detail)

    def step(self, now_ms, ticks_diff):
        """Advance a little; True when the response is complete. SyncError on failure."""
        if self.state == DONE:
            return True
        if ticks_diff(self.deadline, now_ms) < 0:
            self._fail("timeout", "state %d" % self.state)
        if self.state == CONNECTING:
            ev = self.poll.poll(0)
            if not ev:
                return False
            flags = ev[0][1]
            if flags & (select.POLLERR | select.POLLHUP):
                self._fail("connect", "refused")
            self.poll.modify(self.sock, select.POLLIN)
            self.state = SENDING
            return False
        if self.state == SENDING:
            self._send()
            return False
        self._recv()
        return self.state == DONE

    def _send(self):
        hl = len(self.head)
        if self.sent < hl:
            data = self.head
            off = self.sent
        else:
            data = self.body
            off = self.sent - hl
        end = min(off + CHUNK, len(data)) if data is not None else 0
        if data is not None and off < end:
            try:
                n = self.sock.write(memoryview(data)[off:end])  # type: ignore[union-attr]
            except OSError as e:
                if e.errno in _AGAIN:
                    return
                self._fail("cut", "send %s" % e.errno)
            if n is None:
                return
            self.sent += n
        total = hl + (0 if self.body is None else len(self.body))
        if self.sent >= total:
            self.state = HEAD

    def _read(self, mv):
        try:
            n = self.sock.readinto(mv)  # type: ignore[union-attr]
        except OSError as e:
            if e.errno in _AGAIN:
                return -1
            self._fail("cut", "recv %s" % e.errno)
        if n is None:
            return -1
        return n

    def _recv(self):
        mv = memoryview(self.rbuf)
        if self.state == HEAD:
            if self.n >= RBUF:
                self._fail("too_large", "response head")
            n = self._read(mv[self.n:min(RBUF, self.n + CHUNK)])
            if n < 0:
                return
            if n == 0:
                self._fail("cut", "in response head")
            self.n += n
            end = bytes(self.rbuf[:self.n]).find(b"\r\n\r\n")
            if end < 0:
                return
            self._parse_head(end)
            if self.state == DONE:  # Content-Length: 0, nothing more to read
                return
            rest = self.n - (end + 4)
            self.rbuf[0:rest] = self.rbuf[end + 4:self.n]
            self.n = 0
            self.state = BODY
            if rest:
                self._take(mv[0:rest])
            return
        # BODY
        if self.sink is not None:
            n = self._read(mv[0:CHUNK])
            if n > 0:
                self._take(mv[0:n])
        else:
            if self.n >= RBUF:
                self._fail("too_large", "response body")
            n = self._read(mv[self.n:min(RBUF, self.n + CHUNK)])
            if n > 0:
                self._take(mv[self.n:self.n + n])
        if n == 0 and self.state != DONE:
            self._fail("cut", "in response body at %d of %d" % (self.got, self.length))

    def _take(self, mv):
        n = len(mv)
        if self.got + n > self.length:
            self._fail("protocol", "more body than Content-Length")
        if self.sink is not None:
            self.sink.feed(mv)
        else:
            self.n += n
        self.got += n
        if self.got == self.length:
            self.close()
            self.state = DONE

    def _parse_head(self, end):
        try:
            text = bytes(self.rbuf[:end]).decode()
        except UnicodeError:
            self._fail("protocol", "head not text")
        lines = text.split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            self._fail("protocol", "status line")
        try:
            self.status = int(parts[1])
        except ValueError:
            self._fail("protocol", "status")
        for ln in lines[1:]:
            c = ln.find(":")
            if c > 0 and ln[:c].strip().lower() == "content-length":
                try:
                    self.length = int(ln[c + 1:].strip())
                except ValueError:
                    self._fail("protocol", "Content-Length")
        if self.length < 0:
            self._fail("protocol", "no Content-Length")
        if self.status not in (200, 206) and self.sink is not None:
            self.sink = None  # an error answer is read into rbuf, not fed to the installer
        if self.length == 0:
            self.close()
            self.state = DONE

    def text(self):
        """The response body kept in rbuf (non-streamed requests)."""
        return bytes(self.rbuf[:self.n])
