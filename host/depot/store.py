"""The depot's embedded store: SQLite in WAL mode with synchronous=FULL, so a transaction
that COMMIT returned for is on disk — the depot acknowledges taps only after that.

Tables: devices (registry: the derived sync and maintenance keys and a fingerprint of the
device secret, never the secret itself — host/synckeys.py; last sync, journal incarnation),
taps (device_id, incarnation, seq) unique — the idempotency key of ingest, conflicts
(same key, other bytes: kept as evidence), alarms (new journal incarnations, conflicts,
refused times, old clients), refused (bundles a validator refused, by reason), outbox
(batches for the back office with an idempotency key naming the depot and this
database's own random incarnation, attempts and next retry time), bundles (signed
downlink files), meta (depot id, database incarnation, deny state). One connection per
thread (SQLite objects are not shared across threads).
"""

import json
import os
import sqlite3
import threading
import time

from host import ranges, synckeys
from host.depot.errors import DepotError

SCHEMA_VERSION = "2"
# a bundle refused for one of these reasons is not offered to that validator again
# (the same bytes would be refused again); truncated, io, http_* are worth a retry
PERMANENT = ("bad_magic", "bad_format", "bad_kind", "wrong_kind", "too_large", "bad_body",
             "bad_signature", "stale", "trailing", "bad_config")

SCHEMA = """
CREATE TABLE IF NOT EXISTS devices (
    device_id TEXT PRIMARY KEY, sync_key BLOB NOT NULL, maint_key BLOB NOT NULL,
    fingerprint TEXT NOT NULL, registered_at REAL NOT NULL,
    last_seen REAL, last_upload REAL, device_time INTEGER, skew_s INTEGER, trusted INTEGER,
    unsent_reported INTEGER, have TEXT, inc INTEGER, last_seq_reported INTEGER,
    time_refused TEXT);
CREATE TABLE IF NOT EXISTS taps (
    id INTEGER PRIMARY KEY, device_id TEXT NOT NULL, inc INTEGER NOT NULL,
    seq INTEGER NOT NULL, t INTEGER NOT NULL, payload BLOB NOT NULL, tag BLOB NOT NULL,
    received_at REAL NOT NULL, outbox_id INTEGER, UNIQUE (device_id, inc, seq));
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
    id INTEGER PRIMARY KEY, device_id TEXT NOT NULL, inc INTEGER NOT NULL,
    seq INTEGER NOT NULL, t INTEGER NOT NULL, payload BLOB NOT NULL, tag BLOB NOT NULL,
    received_at REAL NOT NULL, UNIQUE (device_id, inc, seq, payload, tag));
CREATE TABLE IF NOT EXISTS alarms (
    id INTEGER PRIMARY KEY, at REAL NOT NULL, kind TEXT NOT NULL, device_id TEXT,
    detail TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS refused (
    device_id TEXT NOT NULL, kind INTEGER NOT NULL, version INTEGER NOT NULL,
    reason TEXT NOT NULL, first_at REAL NOT NULL, last_at REAL NOT NULL,
    times INTEGER NOT NULL, PRIMARY KEY (device_id, kind, version));
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
            db = self._db()
            cols = [r[1] for r in db.execute("PRAGMA table_info(taps)")]
            if cols and "inc" not in cols:
                raise DepotError("store", "%s is a depot database of sync API v1 (no journal "
                                 "incarnations): deliver its outbox with the old version, "
                                 "then start a new database" % self.path, 503)
            db.executescript(SCHEMA)
        except sqlite3.Error as e:
            raise DepotError("store", "%s: %s" % (self.path, e), 503) from None
        if self.meta("depot_id") is None:
            self.set_meta("depot_id", "depot-" + os.urandom(4).hex())
        if self.meta("db_inc") is None:
            # this database's own incarnation: it names every idempotency key, so a depot
            # rebuilt with an empty database under the same id never reuses a key
            self.set_meta("db_inc", os.urandom(4).hex())
            self.set_meta("schema", SCHEMA_VERSION)
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
        """Add a device or re-key it (re-provisioning) from its secret S. Only keys derived
        from S are stored (host/synckeys.py): S itself stays on the device (and with the
        back office's record key). Returns True if new."""
        secret = bytes(secret)
        if len(secret) < 16:
            raise DepotError("bad_input", "device secret must be at least 16 bytes")
        return self.register_keys(device_id, synckeys.derive(secret, synckeys.SYNC),
                                  synckeys.derive(secret, synckeys.MAINT),
                                  synckeys.fingerprint(secret))

    def register_keys(self, device_id, sync_key, maint_key, fingerprint):
        """Register with keys derived elsewhere (the depot never sees S at all)."""
        if not isinstance(device_id, str) or not 1 <= len(device_id) <= 64 or \
                not device_id.isascii() or not device_id.isprintable() or "/" in device_id:
            raise DepotError("bad_input", "device id must be 1-64 printable ASCII, no '/'")
        if len(bytes(sync_key)) != 32 or len(bytes(maint_key)) != 32:
            raise DepotError("bad_input", "derived keys are 32 bytes")

        def tx(db):
            new = db.execute("SELECT 1 FROM devices WHERE device_id=?",
                             (device_id,)).fetchone() is None
            db.execute("INSERT INTO devices(device_id, sync_key, maint_key, fingerprint, "
                       "registered_at) VALUES (?,?,?,?,?) ON CONFLICT(device_id) DO UPDATE SET "
                       "sync_key=excluded.sync_key, maint_key=excluded.maint_key, "
                       "fingerprint=excluded.fingerprint",
                       (device_id, bytes(sync_key), bytes(maint_key), str(fingerprint),
                        self.clock()))
            return new
        return self._tx(tx)

    def _col(self, device_id, col):
        row = self._db().execute("SELECT %s FROM devices WHERE device_id=?" % col,
                                 (device_id,)).fetchone()
        return None if row is None else row[0]

    def sync_key(self, device_id):
        """The key the device's uploads are MAC'd with (None: not registered)."""
        k = self._col(device_id, "sync_key")
        return None if k is None else bytes(k)

    def maint_key(self, device_id):
        k = self._col(device_id, "maint_key")
        return None if k is None else bytes(k)

    def fingerprint(self, device_id):
        return self._col(device_id, "fingerprint")

    def devices(self):
        cur = self._db().execute(
            "SELECT d.device_id, d.last_seen, d.last_upload, d.skew_s, d.unsent_reported, d.have,"
            " (SELECT COUNT(*) FROM taps t WHERE t.device_id=d.device_id),"
            " (SELECT MAX(seq) FROM taps t WHERE t.device_id=d.device_id AND t.inc=d.inc),"
            " d.inc, d.trusted, d.time_refused "
            "FROM devices d ORDER BY d.device_id")
        out = []
        for r in cur.fetchall():
            refused = self.refused(r[0])
            out.append(dict(
                device_id=r[0], last_seen=r[1], last_upload=r[2], skew_s=r[3],
                unsent_on_device=r[4], have=json.loads(r[5]) if r[5] else {}, taps=r[6],
                max_seq=r[7], incarnation=r[8], clock_trusted=None if r[9] is None else
                bool(r[9]), time_refused=json.loads(r[10]) if r[10] else None,
                refused=refused,
                last_error=", ".join("%d:%s" % (k, why) for k, _v, why, _n in refused) or None))
        return out

    def alarm(self, db, kind, device_id, detail):
        """Record an alarm inside the caller's transaction (shown until the end of time:
        an operator reads them; nothing here clears one)."""
        db.execute("INSERT INTO alarms(at, kind, device_id, detail) VALUES (?,?,?,?)",
                   (self.clock(), kind, device_id, detail))

    def alarms(self):
        return [dict(at=r[0], kind=r[1], device_id=r[2], detail=r[3]) for r in self._db().execute(
            "SELECT at, kind, device_id, detail FROM alarms ORDER BY id")]

    def _incarnation(self, db, device_id, inc, last_seq, how):
        """Note the journal incarnation a device speaks with; a new one is an alarm."""
        row = db.execute("SELECT inc, unsent_reported FROM devices WHERE device_id=?",
                         (device_id,)).fetchone()
        old = row[0] if row else None
        if old is not None and old != inc:
            stored = db.execute("SELECT COUNT(*), MAX(seq) FROM taps WHERE device_id=? AND "
                                "inc=?", (device_id, old)).fetchone()
            self.alarm(db, "new_incarnation", device_id,
                       "journal incarnation %08x replaced %08x (seen at %s; %d taps stored "
                       "under the old one, last seq %s; the device last reported %s unsent): "
                       "its journal was wiped or replaced - taps not yet uploaded from the "
                       "old journal are missing" % (inc, old, how, stored[0], stored[1],
                                                    row[1]))
        if old != inc:
            db.execute("UPDATE devices SET inc=? WHERE device_id=?", (inc, device_id))

    def hello(self, device_id, device_time, unsent, have, inc=None, last_seq=None,
              trusted=None):
        now = self.clock()
        skew = None if not device_time else int(device_time - now)

        def tx(db):
            if inc is not None:
                self._incarnation(db, device_id, inc, last_seq, "hello")
            db.execute(
                "UPDATE devices SET last_seen=?, device_time=?, skew_s=?, unsent_reported=?, "
                "have=?, last_seq_reported=?, trusted=? WHERE device_id=?",
                (now, device_time, skew, unsent, json.dumps(have), last_seq,
                 None if trusted is None else int(bool(trusted)), device_id))
            # a kind the device now has at or beyond a refused version: that refusal is over
            for k, v in have.items():
                db.execute("DELETE FROM refused WHERE device_id=? AND kind=? AND version<=?",
                           (device_id, int(k), int(v)))
        self._tx(tx)

    def old_client(self, device_id, api):
        """A registered validator spoke an old API version (refused): one alarm a day."""
        def tx(db):
            if db.execute("SELECT 1 FROM alarms WHERE kind='old_client' AND device_id=? AND "
                          "at > ?", (device_id, self.clock() - 86400)).fetchone() is None:
                self.alarm(db, "old_client", device_id, "spoke sync API %s and was refused: "
                           "its firmware needs an update" % api)
        self._tx(tx)

    def report(self, device_id, refused, time_refused):
        """A validator's report at the end of a session: bundles it refused
        [(kind, version, reason)] and a depot time it refused ({offered, device, why})."""
        now = self.clock()

        def tx(db):
            for kind, version, reason in refused:
                db.execute("INSERT INTO refused(device_id, kind, version, reason, first_at, "
                           "last_at, times) VALUES (?,?,?,?,?,?,1) ON CONFLICT(device_id, kind, "
                           "version) DO UPDATE SET reason=excluded.reason, last_at=excluded."
                           "last_at, times=times+1", (device_id, kind, version, reason, now,
                                                      now))
            if time_refused is not None:
                db.execute("UPDATE devices SET time_refused=? WHERE device_id=?",
                           (json.dumps(dict(time_refused, at=now)), device_id))
                # one alarm an hour per device: a validator parked at a depot whose clock
                # is wrong reports it at every poll
                if db.execute("SELECT 1 FROM alarms WHERE kind='time_refused' AND "
                              "device_id=? AND at > ?", (device_id, now - 3600)).fetchone():
                    return
                self.alarm(db, "time_refused", device_id,
                           "the validator refused the depot's time %s (its clock %s): %s"
                           % (time_refused["offered"], time_refused["device"],
                              time_refused["why"]))
        self._tx(tx)

    def refused(self, device_id):
        """[(kind, version, reason, times)] a device refused and has not replaced since."""
        return [tuple(r) for r in self._db().execute(
            "SELECT kind, version, reason, times FROM refused WHERE device_id=? ORDER BY kind, "
            "version", (device_id,))]

    def refused_for_good(self, device_id):
        """{(kind, version)} not to offer that device again (refused for a lasting reason)."""
        return {(r[0], r[1]) for r in self._db().execute(
            "SELECT kind, version FROM refused WHERE device_id=? AND reason IN (%s)"
            % ",".join("?" * len(PERMANENT)), (device_id,) + PERMANENT)}

    # --- ingest ---------------------------------------------------------------------------
    def ingest(self, device_id, records, inc=0):
        """Store records (seq, t, payload, tag) of journal incarnation `inc` durably;
        returns (new, duplicates, conflicts).

        Idempotent by (device_id, inc, seq): a record already stored with the same bytes is
        a duplicate and left as it was; other bytes under a stored key are a conflict, kept
        as evidence with an alarm, never dropped. When this returns, the records are
        committed (synchronous=FULL)."""
        now = self.clock()

        def tx(db):
            self._incarnation(db, device_id, inc, None, "upload")
            new = conf = 0
            for seq, t, payload, tag in records:
                cur = db.execute("INSERT INTO taps(device_id, inc, seq, t, payload, tag, "
                                 "received_at) VALUES (?,?,?,?,?,?,?) ON CONFLICT(device_id, "
                                 "inc, seq) DO NOTHING",
                                 (device_id, inc, seq, t, payload, tag, now))
                new += cur.rowcount
                why = ranges.record_problem(payload) if cur.rowcount else None
                if why is not None:  # stored and forwarded all the same: the depot never drops
                    self.alarm(db, "bad_record", device_id, "incarnation %08x seq %d: %s "
                               "(docs/ranges.md); forwarded, the back office keeps it aside"
                               % (inc, seq, why))
                if cur.rowcount == 0:
                    old = db.execute("SELECT payload, tag FROM taps WHERE device_id=? AND "
                                     "inc=? AND seq=?", (device_id, inc, seq)).fetchone()
                    if bytes(old[0]) != bytes(payload) or bytes(old[1]) != bytes(tag):
                        conf += 1
                        c = db.execute("INSERT INTO conflicts(device_id, inc, seq, t, payload, "
                                       "tag, received_at) VALUES (?,?,?,?,?,?,?) ON CONFLICT "
                                       "DO NOTHING", (device_id, inc, seq, t, payload, tag, now))
                        if c.rowcount:
                            self.alarm(db, "conflict", device_id,
                                       "incarnation %08x seq %d arrived again with other "
                                       "bytes: kept as evidence, the first copy stands"
                                       % (inc, seq))
            db.execute("UPDATE devices SET last_upload=?, last_seen=? WHERE device_id=?",
                       (now, now, device_id))
            return new, conf
        new, conf = self._tx(tx)
        return new, len(records) - new - conf, conf

    def taps(self, device_id=None):
        """[(device_id, seq, t, payload)] of every stored tap (any incarnation)."""
        return [(r[0], r[2], r[3], r[4]) for r in self.taps_full(device_id)]

    def taps_full(self, device_id=None):
        """[(device_id, inc, seq, t, payload, tag)] ordered by device, incarnation, seq."""
        q = "SELECT device_id, inc, seq, t, payload, tag FROM taps"
        args = ()
        if device_id is not None:
            q += " WHERE device_id=?"
            args = (device_id,)
        return [(r[0], r[1], r[2], r[3], bytes(r[4]), bytes(r[5])) for r in
                self._db().execute(q + " ORDER BY device_id, inc, seq", args)]

    def conflicts(self):
        """[(device_id, inc, seq, t, payload)] received under a stored key with other bytes."""
        return [(r[0], r[1], r[2], r[3], bytes(r[4])) for r in self._db().execute(
            "SELECT device_id, inc, seq, t, payload FROM conflicts ORDER BY device_id, seq")]

    def gaps(self):
        """Holes in each device's sequence numbers, per journal incarnation:
        [(device_id, first_missing, last_missing)]."""
        cur = self._db().execute(
            "SELECT device_id, prev + 1, seq - 1 FROM (SELECT device_id, seq, LAG(seq) OVER "
            "(PARTITION BY device_id, inc ORDER BY seq) AS prev FROM taps) "
            "WHERE prev IS NOT NULL AND seq - prev > 1 ORDER BY device_id, prev")
        return [tuple(r) for r in cur]

    # --- outbox ---------------------------------------------------------------------------
    def pack(self, max_taps=500, now=None):
        """Put unbatched taps into new outbox batches (each with its idempotency key)."""
        depot = self.meta("depot_id")
        dbinc = self.meta("db_inc")
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
                           ("%s:%s:%d" % (depot, dbinc, bid), bid))
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
        taps = [(r[0], r[1], r[2], r[3], bytes(r[4]), bytes(r[5])) for r in self._db().execute(
            "SELECT device_id, inc, seq, t, payload, tag FROM taps WHERE outbox_id=? "
            "ORDER BY device_id, inc, seq", (row[0],))]
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
                "AND t.seq < (SELECT MAX(m.seq) FROM taps m WHERE m.device_id = t.device_id "
                "AND m.inc = t.inc) "
                "AND NOT EXISTS (SELECT 1 FROM taps u LEFT JOIN outbox uo ON uo.id = u.outbox_id "
                "WHERE u.device_id = t.device_id AND u.inc = t.inc AND u.seq < t.seq AND "
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
