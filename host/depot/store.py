"""The depot's embedded store: SQLite in WAL mode with synchronous=FULL, so a transaction
that COMMIT returned for is on disk — the depot acknowledges taps only after that.

Tables: devices (registry with secrets, last sync), taps (device_id, seq) unique — the
idempotency key of ingest, outbox (batches for the back office with an idempotency key,
attempts and next retry time), bundles (signed downlink files), meta (depot id, deny
state). One connection per thread (SQLite objects are not shared across threads).
"""

import json
import os
import sqlite3
import threading
import time

from host.depot.errors import DepotError

SCHEMA = """
CREATE TABLE IF NOT EXISTS devices (
    device_id TEXT PRIMARY KEY, secret BLOB NOT NULL, registered_at REAL NOT NULL,
    last_seen REAL, last_upload REAL, device_time INTEGER, skew_s INTEGER,
    unsent_reported INTEGER, have TEXT, last_error TEXT);
CREATE TABLE IF NOT EXISTS taps (
    id INTEGER PRIMARY KEY, device_id TEXT NOT NULL, seq INTEGER NOT NULL,
    t INTEGER NOT NULL, payload BLOB NOT NULL, received_at REAL NOT NULL,
    outbox_id INTEGER, UNIQUE (device_id, seq));
CREATE INDEX IF NOT EXISTS taps_unbatched ON taps (outbox_id) WHERE outbox_id IS NULL;
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY, idem_key TEXT UNIQUE NOT NULL, created_at REAL NOT NULL,
    n INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_try REAL NOT NULL,
    last_error TEXT, delivered_at REAL);
CREATE TABLE IF NOT EXISTS bundles (
    kind INTEGER NOT NULL, version INTEGER NOT NULL, data BLOB NOT NULL,
    added_at REAL NOT NULL, PRIMARY KEY (kind, version));
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS conflicts (
    id INTEGER PRIMARY KEY, device_id TEXT NOT NULL, seq INTEGER NOT NULL, t INTEGER NOT NULL,
    payload BLOB NOT NULL, received_at REAL NOT NULL, UNIQUE (device_id, seq, payload));
"""


class DepotStore:
    """All durable depot state. `open()` creates/migrates; no I/O in the constructor."""

    def __init__(self, path, clock=time.time):
        self.path = str(path)
        self.clock = clock
        self._local = threading.local()
        self._lock = threading.Lock()  # one writer at a time (SQLite allows one anyway)

    # --- connections ----------------------------------------------------------------------
    def _db(self):
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")  # durable at COMMIT: acks depend on it
            db.execute("PRAGMA busy_timeout=30000")
            self._local.db = db
        return db

    def open(self):
        d = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(d, exist_ok=True)
        try:
            self._db().executescript(SCHEMA)
        except sqlite3.Error as e:
            raise DepotError("store", "%s: %s" % (self.path, e), 503) from None
        if self.meta("depot_id") is None:
            self.set_meta("depot_id", "depot-" + os.urandom(4).hex())
        return self

    def close(self):
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    def _tx(self, fn):
        with self._lock:
            db = self._db()
            try:
                db.execute("BEGIN IMMEDIATE")
                out = fn(db)
                db.execute("COMMIT")
                return out
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    # --- meta -----------------------------------------------------------------------------
    def meta(self, key, default=None):
        row = self._db().execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return default if row is None else row[0]

    def set_meta(self, key, value):
        self._tx(lambda db: db.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE "
            "SET value=excluded.value", (key, str(value))))

    # --- device registry ------------------------------------------------------------------
    def register(self, device_id, secret):
        """Add a device or replace its secret (re-provisioning). Returns True if new."""
        if not isinstance(device_id, str) or not 1 <= len(device_id) <= 64 or \
                not device_id.isascii() or not device_id.isprintable() or "/" in device_id:
            raise DepotError("bad_input", "device id must be 1-64 printable ASCII, no '/'")
        secret = bytes(secret)
        if len(secret) < 16:
            raise DepotError("bad_input", "device secret must be at least 16 bytes")

        def tx(db):
            new = db.execute("SELECT 1 FROM devices WHERE device_id=?",
                             (device_id,)).fetchone() is None
            db.execute("INSERT INTO devices(device_id, secret, registered_at) VALUES (?,?,?) "
                       "ON CONFLICT(device_id) DO UPDATE SET secret=excluded.secret",
                       (device_id, secret, self.clock()))
            return new
        return self._tx(tx)

    def secret(self, device_id):
        row = self._db().execute("SELECT secret FROM devices WHERE device_id=?",
                                 (device_id,)).fetchone()
        return None if row is None else bytes(row[0])

    def devices(self):
        cur = self._db().execute(
            "SELECT d.device_id, d.last_seen, d.last_upload, d.skew_s, d.unsent_reported, d.have,"
            " (SELECT COUNT(*) FROM taps t WHERE t.device_id=d.device_id),"
            " (SELECT MAX(seq) FROM taps t WHERE t.device_id=d.device_id), d.last_error "
            "FROM devices d ORDER BY d.device_id")
        return [dict(device_id=r[0], last_seen=r[1], last_upload=r[2], skew_s=r[3],
                     unsent_on_device=r[4], have=json.loads(r[5]) if r[5] else {},
                     taps=r[6], max_seq=r[7], last_error=r[8]) for r in cur]

    def hello(self, device_id, device_time, unsent, have, error=None):
        now = self.clock()
        skew = None if not device_time else int(device_time - now)
        self._tx(lambda db: db.execute(
            "UPDATE devices SET last_seen=?, device_time=?, skew_s=?, unsent_reported=?, "
            "have=?, last_error=? WHERE device_id=?",
            (now, device_time, skew, unsent, json.dumps(have), error, device_id)))

    # --- ingest ---------------------------------------------------------------------------
    def ingest(self, device_id, records):
        """Store records (seq, t, payload) durably; returns (new, duplicates).

        Idempotent by (device_id, seq): a record already stored is counted as a duplicate
        and left as it was. When this returns, the records are committed (synchronous=FULL).
        """
        now = self.clock()

        def tx(db):
            new = 0
            for seq, t, payload in records:
                cur = db.execute("INSERT INTO taps(device_id, seq, t, payload, received_at) "
                                 "VALUES (?,?,?,?,?) ON CONFLICT(device_id, seq) DO NOTHING",
                                 (device_id, seq, t, payload, now))
                new += cur.rowcount
                if cur.rowcount == 0:
                    # a true re-send carries the same bytes; different bytes under a known
                    # seq (a journal wiped and restarted at 1, say) must not be dropped as
                    # a duplicate: kept aside and shown on the status page
                    old = db.execute("SELECT payload FROM taps WHERE device_id=? AND seq=?",
                                     (device_id, seq)).fetchone()
                    if bytes(old[0]) != bytes(payload):
                        db.execute("INSERT INTO conflicts(device_id, seq, t, payload, "
                                   "received_at) VALUES (?,?,?,?,?) ON CONFLICT DO NOTHING",
                                   (device_id, seq, t, payload, now))
            db.execute("UPDATE devices SET last_upload=?, last_seen=? WHERE device_id=?",
                       (now, now, device_id))
            return new
        new = self._tx(tx)
        return new, len(records) - new

    def taps(self, device_id=None):
        q = "SELECT device_id, seq, t, payload FROM taps"
        args = ()
        if device_id is not None:
            q += " WHERE device_id=?"
            args = (device_id,)
        return [(r[0], r[1], r[2], bytes(r[3])) for r in
                self._db().execute(q + " ORDER BY device_id, seq", args)]

    def conflicts(self):
        """[(device_id, seq, t, payload)] received under a stored seq with other content."""
        return [(r[0], r[1], r[2], bytes(r[3])) for r in self._db().execute(
            "SELECT device_id, seq, t, payload FROM conflicts ORDER BY device_id, seq")]

    def gaps(self):
        """Holes in each device's sequence numbers: [(device_id, first_missing, last_missing)]."""
        cur = self._db().execute(
            "SELECT device_id, prev + 1, seq - 1 FROM (SELECT device_id, seq, LAG(seq) OVER "
            "(PARTITION BY device_id ORDER BY seq) AS prev FROM taps) "
            "WHERE prev IS NOT NULL AND seq - prev > 1 ORDER BY device_id, prev")
        return [tuple(r) for r in cur]

    # --- outbox ---------------------------------------------------------------------------
    def pack(self, max_taps=500, now=None):
        """Put unbatched taps into new outbox batches (each with its idempotency key)."""
        depot = self.meta("depot_id")
        now = self.clock() if now is None else now

        def tx(db):
            made = 0
            while True:
                ids = [r[0] for r in db.execute(
                    "SELECT id FROM taps WHERE outbox_id IS NULL ORDER BY id LIMIT ?",
                    (max_taps,))]
                if not ids:
                    return made
                cur = db.execute("INSERT INTO outbox(idem_key, created_at, n, next_try) "
                                 "VALUES ('', ?, ?, ?)", (now, len(ids), now))
                bid = cur.lastrowid
                db.execute("UPDATE outbox SET idem_key=? WHERE id=?",
                           ("%s:%d" % (depot, bid), bid))
                db.executemany("UPDATE taps SET outbox_id=? WHERE id=?",
                               [(bid, i) for i in ids])
                made += 1
        return self._tx(tx)

    def next_batch(self, now):
        """The oldest undelivered batch due for an attempt: (id, idem_key, taps) or None."""
        row = self._db().execute(
            "SELECT id, idem_key FROM outbox WHERE delivered_at IS NULL AND next_try <= ? "
            "ORDER BY id LIMIT 1", (now,)).fetchone()
        if row is None:
            return None
        taps = [(r[0], r[1], r[2], bytes(r[3])) for r in self._db().execute(
            "SELECT device_id, seq, t, payload FROM taps WHERE outbox_id=? "
            "ORDER BY device_id, seq", (row[0],))]
        return row[0], row[1], taps

    def delivered(self, batch_id):
        self._tx(lambda db: db.execute(
            "UPDATE outbox SET delivered_at=?, last_error=NULL WHERE id=?",
            (self.clock(), batch_id)))

    def failed(self, batch_id, error, next_try):
        self._tx(lambda db: db.execute(
            "UPDATE outbox SET attempts=attempts+1, last_error=?, next_try=? WHERE id=?",
            (str(error)[:200], next_try, batch_id)))

    def outbox_status(self):
        r = self._db().execute(
            "SELECT COUNT(*), COALESCE(SUM(n),0), MIN(created_at), MAX(attempts) FROM outbox "
            "WHERE delivered_at IS NULL").fetchone()
        d = self._db().execute("SELECT COUNT(*), COALESCE(SUM(n),0) FROM outbox "
                               "WHERE delivered_at IS NOT NULL").fetchone()
        unb = self._db().execute("SELECT COUNT(*) FROM taps WHERE outbox_id IS NULL").fetchone()
        err = self._db().execute("SELECT last_error, next_try FROM outbox WHERE delivered_at "
                                 "IS NULL ORDER BY id LIMIT 1").fetchone()
        return dict(pending_batches=r[0], pending_taps=r[1] + unb[0], oldest_pending=r[2],
                    max_attempts=r[3] or 0, delivered_batches=d[0], delivered_taps=d[1],
                    last_error=err[0] if err else None, next_try=err[1] if err else None)

    def prune(self, before):
        """Delete taps the back office acknowledged before `before` (Unix s); returns how many.

        Per device only a prefix goes (below its oldest tap not yet delivered) and its
        highest seq stays, so gap detection still has an anchor; a pruned tap re-sent by a
        validator is stored and forwarded again, and the back office keeps it once by
        (device id, seq)."""
        def tx(db):
            cur = db.execute(
                "DELETE FROM taps WHERE id IN (SELECT t.id FROM taps t JOIN outbox o "
                "ON o.id = t.outbox_id WHERE o.delivered_at IS NOT NULL AND o.delivered_at < ? "
                "AND t.seq < (SELECT MAX(m.seq) FROM taps m WHERE m.device_id = t.device_id) "
                "AND NOT EXISTS (SELECT 1 FROM taps u LEFT JOIN outbox uo ON uo.id = u.outbox_id "
                "WHERE u.device_id = t.device_id AND u.seq < t.seq AND "
                "(u.outbox_id IS NULL OR uo.delivered_at IS NULL)))", (before,))
            # outbox rows stay: a reused row id would reuse an idempotency key, and the back
            # office would take a new batch for an old one
            return cur.rowcount
        return self._tx(tx)

    # --- bundles --------------------------------------------------------------------------
    def add_bundle(self, kind, version, data):
        self._tx(lambda db: db.execute(
            "INSERT INTO bundles(kind, version, data, added_at) VALUES (?,?,?,?) "
            "ON CONFLICT(kind, version) DO NOTHING", (kind, version, bytes(data), self.clock())))

    def latest_bundles(self):
        """{kind: (version, size)} of the newest bundle of each kind."""
        cur = self._db().execute(
            "SELECT kind, MAX(version) FROM bundles GROUP BY kind")
        out = {}
        for kind, version in cur.fetchall():
            size = self._db().execute("SELECT LENGTH(data) FROM bundles WHERE kind=? AND "
                                      "version=?", (kind, version)).fetchone()[0]
            out[kind] = (version, size)
        return out

    def bundle(self, kind, version):
        row = self._db().execute("SELECT data FROM bundles WHERE kind=? AND version=?",
                                 (kind, version)).fetchone()
        return None if row is None else bytes(row[0])


def register(db_path, device_id, secret):
    """Register (or re-key) a validator in the depot registry at `db_path`; True if new."""
    store = DepotStore(db_path).open()
    try:
        return store.register(device_id, secret)
    finally:
        store.close()
