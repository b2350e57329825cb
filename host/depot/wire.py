"""The validator -> depot upload batch: binary layout and its HMAC (docs/sync-api.md).

    0   4  magic "BRTU"
    4   1  format version = 2 (1 is refused with `api_version`)
    5   1  L = length of the device id (1..64, ASCII)
    6   L  device id
    .   4  journal incarnation (u32 BE, docs/journal.md)
    .   4  device clock, Unix seconds (u32 BE; 0 if unset)
    .   2  record count (u16 BE, 1..MAX_RECORDS)
    then per record:  seq u32 | t u32 | payload length u16 | payload | tag (16 bytes)

The MAC (header X-BRT-MAC, 64 hex digits) is HMAC-SHA256(the device's sync key, body bytes
as sent): the body is its own canonical form, and it names the device and the format.
The tag of each record is the validator's HMAC under its record key (host/synckeys.py),
which only the back office holds: the depot stores and forwards it untouched.
"""

import hashlib
import hmac
import struct

from host.depot.errors import DepotError
from host.synckeys import TAG_LEN

MAGIC = b"BRTU"
VERSION = 2
MAX_RECORDS = 512
MAX_PAYLOAD = 1024
MAX_BODY = 256 * 1024


def mac(key, body):
    return hmac.new(bytes(key), bytes(body), hashlib.sha256).hexdigest()


def check_mac(key, body, mac_hex):
    if not isinstance(mac_hex, str) or len(mac_hex) != 64:
        return False
    return hmac.compare_digest(mac(key, body), mac_hex.lower())


def encode_batch(device_id, incarnation, device_time, records):
    """records: iterable of (seq, t, payload, tag) -> body bytes."""
    dev = device_id.encode("ascii")
    out = [MAGIC, struct.pack(">BB", VERSION, len(dev)), dev]
    records = list(records)
    out.append(struct.pack(">IIH", incarnation, device_time, len(records)))
    for seq, t, payload, tag in records:
        out.append(struct.pack(">IIH", seq, t, len(payload)))
        out.append(bytes(payload))
        out.append(bytes(tag))
    return b"".join(out)


def decode_batch(body):
    """body -> (device_id, incarnation, device_time, [(seq, t, payload, tag), ...]);
    DepotError('malformed'), ('api_version') for a format-1 body, ('too_large')."""
    def bad(why):
        return DepotError("malformed", why)

    if len(body) > MAX_BODY:
        raise DepotError("too_large", "%d bytes" % len(body), 413)
    if len(body) < 6 or body[:4] != MAGIC:
        raise bad("magic")
    if body[4] != VERSION:
        raise DepotError("api_version", "batch format %d; this depot reads format %d "
                         "(docs/sync-api.md): update the validator firmware"
                         % (body[4], VERSION), 426)
    n = body[5]
    if not 1 <= n <= 64 or len(body) < 6 + n + 10:
        raise bad("device id")
    try:
        dev = body[6:6 + n].decode("ascii")
    except UnicodeDecodeError:
        raise bad("device id not ASCII") from None
    if not dev.isprintable() or "/" in dev:
        raise bad("device id characters")
    i = 6 + n
    inc, dtime, count = struct.unpack_from(">IIH", body, i)
    i += 10
    if not 1 <= count <= MAX_RECORDS:
        raise bad("record count %d" % count)
    recs = []
    last = -1
    for _ in range(count):
        if i + 10 > len(body):
            raise bad("truncated record header")
        seq, t, ln = struct.unpack_from(">IIH", body, i)
        i += 10
        if ln > MAX_PAYLOAD or i + ln + TAG_LEN > len(body):
            raise bad("record payload length")
        if seq <= last:
            raise bad("sequence numbers not ascending")
        last = seq
        recs.append((seq, t, bytes(body[i:i + ln]), bytes(body[i + ln:i + ln + TAG_LEN])))
        i += ln + TAG_LEN
    if i != len(body):
        raise bad("trailing bytes")
    return dev, inc, dtime, recs
