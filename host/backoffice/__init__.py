"""Reference back office (DESIGN §6): receives depot batches idempotently, verifies the
depot's HMAC, settles per wallet, finds proofs used twice and passes over their offline
allowance, and publishes deny-list deltas signed with the operator key.

Stores: SQLite (default, `sqlite:PATH` or a plain path) or PostgreSQL via psycopg 3
(`postgresql://...` conninfo). Start: `python -m host.backoffice serve`.
"""

from host.backoffice.store import BackofficeError, BackofficeStore, open_store

__all__ = ["BackofficeError", "BackofficeStore", "open_store"]
