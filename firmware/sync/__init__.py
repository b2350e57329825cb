# Depot sync client (docs/sync-api.md): SyncClient steps an upload/download session over
# non-blocking sockets; SyncError is this layer's exception (reason codes in .reason).
from sync.client import SyncClient  # noqa: F401
from sync.http import SyncError  # noqa: F401
