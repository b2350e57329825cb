"""The depot's device registry, as provisioning needs it: register a device's secret,
and answer a locked device's maintenance challenge (HMAC-SHA256 under that secret).

The secret lives only on the device; the depot registry keeps keys derived from it (the
"sync" key that checks the device's uploads, the "maint" key these challenges are answered
with) and its fingerprint (host/synckeys.py, docs/sync-api.md 'Keys'); the provisioning
laptop keeps no plain copy - the audit log holds a fingerprint. The challenge answer is
therefore computed where the maint key is.

`DepotRegistry` is the depot host's registry (host/depot's SQLite store). Anything with
the same three calls (register, fingerprint, answer) can stand in for it.
"""

import hashlib
import hmac
from .errors import RegistryError

MAC_LABEL = b"BRT-MAINT-v1|"


def fingerprint(secret):
    """Same as firmware maint.fingerprint(): 8 bytes of a labelled SHA-256, in hex."""
    return hashlib.sha256(b"brt-secret-fp|" + secret).digest()[:8].hex()


def maint_mac(secret, device_id, nonce):
    return hmac.new(secret, MAC_LABEL + device_id.encode() + b"|" + nonce,
                    hashlib.sha256).digest()


class DepotRegistry:
    """The depot host's own device registry (host/depot: DepotStore, SQLite), the same
    database the depot service checks uploads against. The provisioning laptop either is
    the depot host or has its database path (a share); there is no HTTP registration
    endpoint in docs/sync-api.md, so this is the depot's library API."""

    def __init__(self, db_path):
        from host.depot import DepotError, DepotStore
        self._err = DepotError
        self.path = str(db_path)
        try:
            self.store = DepotStore(self.path).open()
        except (DepotError, OSError) as e:
            raise RegistryError("depot registry %s unusable: %s" % (self.path, e)) from None

    def close(self):
        self.store.close()

    def register(self, device_id, secret):
        try:
            self.store.register(device_id, secret)
        except self._err as e:
            raise RegistryError("depot registry refused %s: %s" % (device_id, e)) from None

    def fingerprint(self, device_id):
        # the registry keeps derived keys and this fingerprint, never the secret itself
        return self.store.fingerprint(device_id)

    def answer(self, device_id, nonce):
        s = self.store.maint_key(device_id)  # HMAC(secret, "BRT-KDF-v1|maint")
        if s is None:
            raise RegistryError("device %s is not in the depot registry %s" % (device_id, self.path),
                                "it was never enrolled here: it cannot be unlocked from this depot")
        return maint_mac(s, device_id, nonce)


def open_registry(spec):
    if not spec:
        raise RegistryError("no depot registry given", "pass --registry DEPOT_DB (or the site "
                            "file's \"registry\")")
    return DepotRegistry(spec)
