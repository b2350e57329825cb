"""Depot host: receives validators' taps over HTTP, stores them durably (SQLite, WAL), queues
them for the back office (outbox with retries, backoff and idempotency keys), serves signed
bundles and the time. Protocol: docs/sync-api.md. One command: `python -m host.depot serve`.

Library entry points (used by provisioning and tests):
    store = DepotStore(path); store.open()
    store.register(device_id, secret)          # device registry (provisioning calls this)
    register(db_path, device_id, secret)       # the same, one call
"""

from host.depot.errors import DepotError
from host.depot.store import DepotStore, register

__all__ = ["DepotError", "DepotStore", "register"]
