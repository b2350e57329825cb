"""The depot's device registry, as provisioning needs it: register a device's secret,
and answer a locked device's maintenance challenge (HMAC-SHA256 under that secret).

The secret lives only on the device and in the depot registry (which needs it to check
the device's uploads, DESIGN §6); the provisioning laptop keeps no plain copy — the audit
log holds a fingerprint. The challenge answer is therefore computed where the secret is.

`LocalRegistry` is the registry of a depot host running on this machine, one JSON file
(mode 0600) — used when the depot's registry is not reachable over the network, and by
the tests. Another registry (the depot host's HTTP API) implements the same three calls.
"""

import hashlib
import hmac
import json
import os
import pathlib

from .errors import RegistryError

MAC_LABEL = b"BRT-MAINT-v1|"


def fingerprint(secret):
    """Same as firmware maint.fingerprint(): 8 bytes of a labelled SHA-256, in hex."""
    return hashlib.sha256(b"brt-secret-fp|" + secret).digest()[:8].hex()


def maint_mac(secret, device_id, nonce):
    return hmac.new(secret, MAC_LABEL + device_id.encode() + b"|" + nonce,
                    hashlib.sha256).digest()


class LocalRegistry:
    def __init__(self, path):
        self.path = pathlib.Path(path)

    def _load(self):
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:
            raise RegistryError("device registry %s unreadable: %s" % (self.path, e)) from None

    def _save(self, db):
        tmp = self.path.with_name(self.path.name + ".tmp")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(db, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def register(self, device_id, secret, meta=None):
        db = self._load()
        db[device_id] = {"secret": secret.hex(), "fp": fingerprint(secret),
                         "meta": meta or {}}
        self._save(db)

    def fingerprint(self, device_id):
        return self._load().get(device_id, {}).get("fp")

    def answer(self, device_id, nonce):
        rec = self._load().get(device_id)
        if rec is None:
            raise RegistryError("device %s is not in the depot registry" % device_id,
                                "it was never enrolled here: it cannot be unlocked from this depot")
        return maint_mac(bytes.fromhex(rec["secret"]), device_id, nonce)


def open_registry(spec):
    if not spec:
        raise RegistryError("no depot registry given", "pass --registry PATH (or the site "
                            "file's \"registry\")")
    return LocalRegistry(spec)
