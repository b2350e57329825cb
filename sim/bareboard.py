"""A bare virtual board for sim/serialdev.py: the virtual-board link (sim/vboard/machine.py,
protocol in docs/simulator.md) with an identity and nothing wired.

HELLO gives the board's unique id and a power-on reset cause, RESET is acknowledged, and
every other operation fails with ENODEV — what a bus access does on a board with no
chips. Enough for install/enroll; the full device host is sim/devhost.
"""

import socket
import struct
import threading


class BareBoard:
    """A virtual-board link server with no peripherals: HELLO gives the board identity,
    RESET is acknowledged, every other operation fails with ENODEV (nothing wired)."""

    def __init__(self, unique_id=b"\x24\x0a\xc4\x12\x34\x56"):
        self.unique_id = unique_id
        self._srv = socket.socket()
        self._srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._srv.bind(("127.0.0.1", 0))
        self._srv.listen(4)
        self.address = "127.0.0.1:%d" % self._srv.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self._closed:
            try:
                c, _ = self._srv.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        with c:
            try:
                while True:
                    h = self._recv(c, 3)
                    op, n = h[0], (h[1] << 8) | h[2]
                    self._recv(c, n)
                    if op == 0x01:  # HELLO: len, unique id, reset cause (power-on)
                        body = bytes([len(self.unique_id)]) + self.unique_id + b"\x01"
                        c.sendall(struct.pack(">BH", 0, len(body)) + body)
                    elif op == 0x42:  # RESET
                        c.sendall(struct.pack(">BH", 0, 0))
                    else:
                        body = bytes([19]) + b"no such device on the bare board"
                        c.sendall(struct.pack(">BH", 1, len(body)) + body)
            except (OSError, ConnectionError):
                return

    @staticmethod
    def _recv(c, n):
        buf = b""
        while len(buf) < n:
            k = c.recv(n - len(buf))
            if not k:
                raise ConnectionError("closed")
            buf += k
        return buf

    def close(self):
        self._closed = True
        self._srv.close()
