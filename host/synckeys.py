"""Who holds which key in sync (docs/sync-api.md 'Keys'), on the host side.

A validator has one master secret S (32 bytes, /data/secret.bin, set at provisioning).
Nothing on the wire is MAC'd with S itself; each party gets a key derived from it with a
label (HMAC-SHA256(S, "BRT-KDF-v1|" + label)), and HMAC is a PRF, so knowing one derived
key tells nothing about S or about another derived key:

- "sync"   the depot: the validator's uploads and hellos, and the depot's answers that
           the validator believes (the time, the acknowledgements) are MAC'd with it;
- "record" the back office: the validator tags each journal record with it, so a depot
           (which never holds it) can neither forge nor alter a tap on its way up;
- "maint"  the maintenance unlock (provisioning's challenge-response).

The depot registry therefore stores the sync and maint keys and a fingerprint of S, never
S; the back office stores the record key of each validator, never S (a leak of its
database can forge records but cannot talk to a depot or unlock a validator).
The firmware computes the same in firmware/sync/auth.py.
"""

import hashlib
import hmac
import struct

KDF_LABEL = b"BRT-KDF-v1|"
SYNC, RECORD, MAINT = b"sync", b"record", b"maint"
TAG_LEN = 16


def derive(secret, label):
    """The 32-byte key for `label` (SYNC, RECORD, MAINT) from the device secret S."""
    return hmac.new(bytes(secret), KDF_LABEL + label, hashlib.sha256).digest()


def fingerprint(secret):
    """8 bytes of a labelled SHA-256 of S, hex (the same as firmware maint.fingerprint)."""
    return hashlib.sha256(b"brt-secret-fp|" + bytes(secret)).digest()[:8].hex()


def _mac(key, data):
    # hmac.digest: the one-shot (OpenSSL) form, ~2x faster than hmac.new per call; the back
    # office checks one tag per tap
    return hmac.digest(bytes(key), bytes(data), "sha256")


def record_tag(record_key, device_id, incarnation, seq, t, payload):
    """16-byte tag of one journal record: HMAC-SHA256(record key, "BRT-REC-v1|" + device id
    + "|" + incarnation u32 BE + seq u32 BE + t u32 BE + payload), first 16 bytes. (One
    record; a batch of one validator uses record_tagger, where the formula lives.)"""
    return record_tagger(record_key, device_id)(incarnation, seq, t, payload)


def record_tagger(record_key, device_id):
    """record_tag for one validator, as a function of (incarnation, seq, t, payload): the
    HMAC state after the key and the fixed prefix is computed once and copied per record
    (the back office tags a whole batch of one validator: ~2x faster than record_tag)."""
    base = hmac.new(bytes(record_key), b"BRT-REC-v1|" + device_id.encode("ascii") + b"|",
                    hashlib.sha256)
    head = struct.Struct(">III").pack

    def tag(incarnation, seq, t, payload):
        h = base.copy()
        h.update(head(incarnation, seq, t) + bytes(payload))
        return h.digest()[:TAG_LEN]
    return tag


def time_mac(sync_key, nonce, t):
    """The depot's time answer: HMAC(sync key, "BRT-TIME-v1|" + nonce (16 bytes) + t u32 BE)."""
    return _mac(sync_key, b"BRT-TIME-v1|" + bytes(nonce) + struct.pack(">I", t)).hex()


def ack_mac(sync_key, request_mac, acked):
    """The depot's batch acknowledgement: HMAC(sync key, "BRT-ACK-v1|" + the batch's own
    MAC (32 bytes) + acked seq u32 BE): bound to exactly the batch it answers."""
    return _mac(sync_key, b"BRT-ACK-v1|" + bytes(request_mac) + struct.pack(">I", acked)).hex()


def equal(a, b):
    return hmac.compare_digest(a, b)
