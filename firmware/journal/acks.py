# The ack area: sectors 0 and 1 of the journal partition, a log of 8-byte ack slots.
#
# Why a separate area and not an "ack record" in the data ring: an ack must always be
# writable, above all when the ring is full of unsent taps (that is exactly when the depot
# acks), and the acked sequence number must survive the erase of every data sector it
# talks about. Acks only grow, so the persisted value is simply the largest valid slot in
# either sector. Slots are appended into the current sector; when it is full the other
# sector is erased and the new value goes to its slot 0 — a cut during that erase leaves
# the full sector, which still holds the largest value.
from micropython import const

from .format import ACK_SECTORS, ACK_SLOT, ACK_SLOTS, blank, pack_ack, parse_ack

_CHUNK = const(256)  # slots are read 32 at a time into the journal's buffer


class AckStore:
    def __init__(self, part, buf):
        self._part = part
        self._buf = buf          # shared 256-byte scratch of the journal
        self.acked = 0           # largest persisted upto_seq (0: nothing acked yet)
        self._cur = 0            # sector that holds `acked`
        self._next = 0           # next free slot index in _cur (ACK_SLOTS: full)
        self.torn = 0            # slots that did not check (power cut during a write)

    def load(self):
        best, best_sec, ends = -1, 0, [0, 0]
        self.torn = 0
        for sec in range(ACK_SECTORS):
            for base in range(0, ACK_SLOTS * ACK_SLOT, _CHUNK):
                self._part.readblocks(sec, self._buf, base)
                if blank(self._buf, _CHUNK):  # the usual case: skip 32 erased slots at once
                    continue
                for off in range(0, _CHUNK, ACK_SLOT):
                    slot = (base + off) // ACK_SLOT
                    if blank(memoryview(self._buf)[off:off + ACK_SLOT], ACK_SLOT):
                        continue
                    ends[sec] = slot + 1       # the slot after the last non-blank one
                    v = parse_ack(self._buf, off)
                    if v < 0:
                        self.torn += 1
                    elif v > best:
                        best, best_sec = v, sec
        self.acked = best if best > 0 else 0
        self._cur = best_sec
        self._next = ends[best_sec]

    def write(self, upto):
        """Persist upto (> acked): one 8-byte program, or an erase + program on a switch."""
        if self._next >= ACK_SLOTS:
            other = 1 - self._cur
            self._part.ioctl(6, other)
            self._cur, self._next = other, 0
        pack_ack(self._buf, upto)
        self._part.writeblocks(self._cur, memoryview(self._buf)[0:ACK_SLOT],
                               self._next * ACK_SLOT)
        self._next += 1
        self.acked = upto
