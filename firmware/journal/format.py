# On-flash format of the journal, version 2 (docs/journal.md has the full description).
#
# The raw partition is cut into 4 KiB sectors. Sectors 0 and 1 are the ack area; the
# others form a ring of data sectors, each opened with a 20-byte header and then filled
# with records, never rewritten until erased.
#
#   sector header  magic "BRJ\x02" | epoch u32 | base_seq u32 | incarnation u32 |
#                  crc32(bytes 0..15) u32
#   (incarnation: a random id made when the journal is formatted and copied into every
#   sector opened after: device + incarnation + seq names a record for ever, also after
#   the journal is wiped and its seqs start again)
#   record         len u8 | seq u32 | t u32 | payload (len bytes) | crc32(bytes 0..9+len) u32
#   ack slot       upto_seq u32 | crc32(bytes 0..3, init ACK_SALT) u32
#
# Everything is little-endian. A byte 0xFF where a record's len would be means "no more
# records" (erased flash); any record whose CRC, length or seq does not check ends the
# sector (a power cut tore it).
import struct

import micropython
from crc32 import crc32
from micropython import const

SECTOR = const(4096)
SEC_HDR = const(20)
REC_HDR = const(9)
REC_OVERHEAD = const(13)   # header + trailing CRC
MAX_PAYLOAD = const(240)   # records never cross a sector; the read buffer is RW_BUF bytes
RW_BUF = const(256)        # the journal's one read/write buffer (log.py), used by boot and reader
ACK_SECTORS = const(2)
ACK_SLOT = const(8)
ACK_SLOTS = const(512)     # per ack sector
ACK_SALT = const(0x2C4B4341)  # "ACK," little-endian: an ack slot's CRC differs from a record's
MAGIC = b"BRJ\x02"
VERSION = const(2)
U32 = 0xFFFFFFFF


def pack_sector_header(buf, epoch, base_seq, incarnation):
    buf[0:4] = MAGIC
    struct.pack_into("<III", buf, 4, epoch, base_seq, incarnation)
    struct.pack_into("<I", buf, 16, crc32(buf, 0, 0, 16))


def parse_sector_header(buf):
    """(epoch, base_seq, incarnation) of a valid header in buf[0:20], else None.

    A format-1 header (no incarnation) is not a valid header: such a journal is formatted
    afresh (docs/journal.md 'Incarnation')."""
    if buf[0] != 0x42 or buf[1] != 0x52 or buf[2] != 0x4A or buf[3] != VERSION:
        return None
    if struct.unpack_from("<I", buf, 16)[0] != crc32(buf, 0, 0, 16):
        return None
    return struct.unpack_from("<III", buf, 4)


def pack_record(buf, seq, t, payload):
    """Lay one record out in buf; returns its length on flash."""
    n = len(payload)
    buf[0] = n
    struct.pack_into("<II", buf, 1, seq, t)
    buf[REC_HDR:REC_HDR + n] = payload
    struct.pack_into("<I", buf, REC_HDR + n, crc32(buf, 0, 0, REC_HDR + n))
    return n + REC_OVERHEAD


def record_ok(buf, have, seq):
    """Length on flash of the valid record `seq` at buf[0:have], or 0 (torn / not it)."""
    n = buf[0]
    if n == 0 or n > MAX_PAYLOAD or n + REC_OVERHEAD > have:
        return 0
    if struct.unpack_from("<I", buf, 1)[0] != seq:
        return 0
    if struct.unpack_from("<I", buf, REC_HDR + n)[0] != crc32(buf, 0, 0, REC_HDR + n):
        return 0
    return n + REC_OVERHEAD


def pack_ack(buf, upto):
    struct.pack_into("<I", buf, 0, upto)
    struct.pack_into("<I", buf, 4, crc32(buf, ACK_SALT, 0, 4))


def parse_ack(buf, off):
    """upto_seq of a valid ack slot at buf[off:off+8], else -1."""
    if struct.unpack_from("<I", buf, off + 4)[0] != crc32(buf, ACK_SALT, off, off + 4):
        return -1
    return struct.unpack_from("<I", buf, off)[0]


@micropython.viper
def _all_ff(buf: ptr8, n: int) -> int:
    i = 0
    while i < n:
        if buf[i] != 0xFF:
            return 0
        i += 1
    return 1


def blank(buf, n):
    """True if buf[0:n] is erased flash (all 0xFF)."""
    return _all_ff(buf, n) == 1
