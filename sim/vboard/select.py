# The virtual board's `select` (MicroPython, simulator only): poll() reports a socket's
# events the way the ESP32 port does. On MICROPYPATH=firmware:sim/vboard this replaces
# the built-in `select` (an extensible built-in).
#
# ports/esp32/modsocket.c (socket_stream_ioctl, MP_STREAM_POLL) asks lwIP's select() for
# exactly the events it was given: POLLHUP only when it was registered, and POLLERR
# never. A connection that fails (refused, reset) shows as readable/writable (lwIP's
# err_tcp posts RCVPLUS/SENDPLUS) and the error comes from the next send/recv. The unix
# port's kernel poll() reports POLLERR|POLLHUP unasked, so firmware that relies on them
# ("connect refused" from the poll flags) would pass here and never fire on a board.
# Objects that are not sockets of sim/vboard/socket.py are passed through untouched.
import sys

_p = sys.path
sys.path = []
try:
    import select as _real  # the unix port's built-in select
finally:
    sys.path = _p
del _p

POLLIN = _real.POLLIN
POLLOUT = _real.POLLOUT
POLLERR = _real.POLLERR
POLLHUP = _real.POLLHUP
if hasattr(_real, "select"):
    select = _real.select


class poll:
    def __init__(self):
        self._p = _real.poll()
        self._reg = {}  # inner object -> (registered object, mask)

    def register(self, obj, eventmask=POLLIN | POLLOUT):
        inner = getattr(obj, "_s", obj)
        self._reg[inner] = (obj, eventmask)
        self._p.register(inner, eventmask)

    def modify(self, obj, eventmask):
        inner = getattr(obj, "_s", obj)
        if inner not in self._reg:
            raise OSError(2)  # ENOENT, as the built-in
        self._reg[inner] = (obj, eventmask)
        self._p.modify(inner, eventmask)

    def unregister(self, obj):
        inner = getattr(obj, "_s", obj)
        self._reg.pop(inner, None)
        self._p.unregister(inner)

    def poll(self, timeout=-1):
        out = []
        for ev in self._p.poll(timeout):
            inner, flags = ev[0], ev[1]
            obj, mask = self._reg.get(inner, (inner, 0))
            if obj is not inner:  # a board socket: the ESP32's flags
                f = flags & mask & (POLLIN | POLLOUT)
                if flags & (POLLERR | POLLHUP):
                    f |= mask & (POLLIN | POLLOUT)  # lwIP: an error wakes readers/writers
                if mask & POLLHUP and flags & POLLHUP:
                    f |= POLLHUP
                if not f:
                    continue
                flags = f
            out.append((obj, flags))
        return out

    def ipoll(self, timeout=-1, flags=0):
        return iter(self.poll(timeout))
