"""The validator -> depot upload batch: binary layout and its HMAC (docs/sync-api.md).

    0   4  magic "BRTU"
    4   1  format version = 1
    5   1  L = length of the device id (1..64, ASCII)
    6   L  device id
    .   4  device clock, Unix seconds (u32 BE; 0 if unset)
    .   2  record count (u16 BE, 1..MAX_RECORDS)
    then per record:  seq u32 | t u32 | payload length u16 | payload

The MAC (header X-BRT-MAC, 64 hex digits) is HMAC-SHA256(device secret, body bytes as
sent): the body is its own canonical form, and it names the device and the format.
"""

import hashlib
import hmac
import struct

from host.depot.errors import DepotError

MAGIC = b"BRTU"
VERSION = 1
MAX_RECORDS = 512
MAX_PAYLOAD = 1024
MAX_BODY = 256 * 1024


def mac(secret, body):
    return hmac.new(bytes(secret), bytes(body), hashlib.sha256).hexdigest()


def check_mac(secret, body, mac_hex):
    if not isinstance(mac_hex, str) or len(mac_hex) != 64:
        return False
    return hmac.compare_digest(mac(secret, body), mac_hex.lower())


def encode_batch(device_id, device_time, records):
    """records: iterable of (seq, t, payload) -> body bytes."""
    dev = device_id.encode("ascii")
    out = [MAGIC, struct.pack(">BB", VERSION, len(dev)), dev]
    records = list(records)
    out.append(struct.pack(">IH", device_time, len(records)))
    for seq, t, payload in records:
        out.append(struct.pack(">IIH", seq, t, len(payload)))
        out.append(bytes(payload))
    return b"".join(out)


def decode_batch(body):
    """body -> (device_id, device_time, [(seq, t, payload), ...]); DepotError('malformed')."""
    def bad(why):
        return DepotError("malformed", why)

    if len(body) > MAX_BODY:
        raise DepotError("too_large", "%d bytes" % len(body), 413)
    if len(body) < 6 or body[:4] != MAGIC:
        raise bad("magic")
    if body[4] != VERSION:
        raise bad("format version %d" % body[4])
    n = body[5]
    if not 1 <= n <= 64 or len(body) < 6 + n + 6:
        raise bad("device id")
    try:
        dev = body[6:6 + n].decode("ascii")
    except UnicodeDecodeError:
        raise bad("device id not ASCII") from None
    if not dev.isprintable() or "/" in dev:
        raise bad("device id characters")
    i = 6 + n
    dtime, count = struct.unpack_from(">IH", body, i)
    i += 6
    if not 1 <= count <= MAX_RECORDS:
        raise bad("record count %d" % count)
    recs = []
    last = -1
    for _ in range(count):
        if i + 10 > len(body):
            raise bad("truncated record header")
        seq, t, ln = struct.unpack_from(">IIH", body, i)
        i += 10
        if ln > MAX_PAYLOAD or i + ln > len(body):
            raise bad("record payload length")
        if seq <= last:
            raise bad("sequence numbers not ascending")
        last = seq
        recs.append((seq, t, bytes(body[i:i + ln])))
        i += ln
    if i != len(body):
        raise bad("trailing bytes")
    return dev, dtime, recs
