"""The back office's store and its analysis, on SQLite or PostgreSQL (same SQL, two dialects).

Idempotency is kept twice: a batch's idempotency key is recorded in the same transaction
as its taps (a retried upload is answered with the first answer), and every tap is keyed
by (device_id, seq) (a tap re-packed into another batch is still stored once).
"""

import sqlite3
import threading
import time

import cbor2

from host import bundles as hb

# tap record keys (docs/ARCHITECTURE.md 'Tap record')
K_TIME, K_CLOCK, K_CHANNEL, K_ANSWER, K_REASON, K_WALLET, K_PASS = 1, 2, 3, 4, 5, 6, 7
K_CATEGORY, K_FARE, K_PROOF, K_FARE_VERSION, K_ALLOWANCE = 8, 9, 10, 11, 12
ACCEPTED = 0

SCHEMA = """
CREATE TABLE IF NOT EXISTS depots (depot_id TEXT PRIMARY KEY, secret {B} NOT NULL);
CREATE TABLE IF NOT EXISTS batches (
    idem_key TEXT PRIMARY KEY, depot_id TEXT NOT NULL, received_at {F} NOT NULL,
    n INTEGER NOT NULL, new INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS taps (
    device_id TEXT NOT NULL, seq BIGINT NOT NULL, t BIGINT NOT NULL, answer INTEGER,
    reason INTEGER, wallet {B}, pass_id {B}, proof {B}, category INTEGER, fare BIGINT,
    allowance BIGINT, payload {B} NOT NULL, bad TEXT, batch_key TEXT NOT NULL,
    PRIMARY KEY (device_id, seq));
CREATE INDEX IF NOT EXISTS taps_proof ON taps (proof);
CREATE INDEX IF NOT EXISTS taps_wallet ON taps (wallet);
CREATE TABLE IF NOT EXISTS passes (pass_id {B} PRIMARY KEY, wallet {B}, allowance BIGINT);
CREATE TABLE IF NOT EXISTS deny (entry {B} PRIMARY KEY, version INTEGER NOT NULL,
    cause TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS deltas (version INTEGER PRIMARY KEY, data {B} NOT NULL);
"""


class BackofficeError(Exception):
    """reason: malformed, bad_mac, unknown_depot, conflict, store, bad_input."""

    def __init__(self, reason, detail="", status=400):
        super().__init__("%s%s" % (reason, ": " + detail if detail else ""))
        self.reason = reason
        self.detail = detail
        self.status = status


def parse_record(payload):
    """Tap record bytes -> dict of columns; a record that does not parse keeps `bad`."""
    cols = dict(t=0, answer=None, reason=None, wallet=None, pass_id=None, proof=None,
                category=None, fare=None, allowance=None, bad=None)
    try:
        rec = cbor2.loads(payload)
        if not isinstance(rec, dict):
            raise ValueError("not a map")

        def u(k):
            v = rec.get(k)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or
                                  not 0 <= v < 2 ** 63):
                raise ValueError("field %d" % k)
            return v

        def b(k):
            v = rec.get(k)
            if v is not None and (not isinstance(v, bytes) or len(v) > 64):
                raise ValueError("field %d" % k)
            return v
        cols.update(t=u(K_TIME) or 0, answer=u(K_ANSWER), reason=u(K_REASON),
                    wallet=b(K_WALLET), pass_id=b(K_PASS), proof=b(K_PROOF),
                    category=u(K_CATEGORY), fare=u(K_FARE), allowance=u(K_ALLOWANCE))
        if cols["answer"] is None:
            raise ValueError("no answer")
    except (ValueError, TypeError, cbor2.CBORDecodeError, RecursionError) as e:
        cols = dict(cols, answer=None, bad=str(e)[:100] or type(e).__name__)
    return cols


class _SQLite:
    name = "sqlite"
    B, F = "BLOB", "REAL"

    def __init__(self, path):
        self.path = path
        self.local = threading.local()

    def conn(self):
        db = getattr(self.local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            self.local.db = db
        return db

    def q(self, sql):
        return sql

    def begin(self, db):
        db.execute("BEGIN IMMEDIATE")

    def commit(self, db):
        db.execute("COMMIT")

    def rollback(self, db):
        if db.in_transaction:
            db.execute("ROLLBACK")

    def script(self, db, sql):
        db.executescript(sql)

    def close(self):
        db = getattr(self.local, "db", None)
        if db is not None:
            db.close()
            self.local.db = None


class _Postgres:
    name = "postgresql"
    B, F = "BYTEA", "DOUBLE PRECISION"

    def __init__(self, conninfo):
        import psycopg  # only needed for PostgreSQL
        self.psycopg = psycopg
        self.conninfo = conninfo
        self.local = threading.local()

    def conn(self):
        db = getattr(self.local, "db", None)
        if db is None or db.closed:
            db = self.psycopg.connect(self.conninfo, autocommit=True)
            self.local.db = db
        return db

    def q(self, sql):
        return sql.replace("?", "%s")

    def begin(self, db):
        db.execute("BEGIN")

    def commit(self, db):
        db.execute("COMMIT")

    def rollback(self, db):
        try:
            db.execute("ROLLBACK")
        except self.psycopg.Error:
            pass

    def script(self, db, sql):
        for stmt in sql.split(";"):
            if stmt.strip():
                db.execute(stmt)

    def close(self):
        db = getattr(self.local, "db", None)
        if db is not None:
            db.close()
            self.local.db = None


class BackofficeStore:
    def __init__(self, backend, clock=time.time):
        self.be = backend
        self.clock = clock
        self._lock = threading.Lock()

    # --- plumbing -------------------------------------------------------------------------
    def open(self):
        try:
            self.be.script(self.be.conn(), SCHEMA.format(B=self.be.B, F=self.be.F))
        except Exception as e:
            raise BackofficeError("store", str(e), 503) from None
        return self

    def close(self):
        self.be.close()

    def _x(self, db, sql, args=()):
        return db.execute(self.be.q(sql), args)

    def _all(self, sql, args=()):
        return [tuple(r) for r in self._x(self.be.conn(), sql, args).fetchall()]

    def _tx(self, fn):
        with self._lock:
            db = self.be.conn()
            self.be.begin(db)
            try:
                out = fn(db)
                self.be.commit(db)
                return out
            except BaseException:
                self.be.rollback(db)
                raise

    # --- depots ---------------------------------------------------------------------------
    def register_depot(self, depot_id, secret):
        secret = bytes(secret)
        if not depot_id or len(secret) < 16:
            raise BackofficeError("bad_input", "depot id and a secret of >= 16 bytes")
        self._tx(lambda db: self._x(
            db, "INSERT INTO depots(depot_id, secret) VALUES (?, ?) ON CONFLICT(depot_id) "
            "DO UPDATE SET secret=excluded.secret", (depot_id, secret)))

    def depot_secret(self, depot_id):
        r = self._all("SELECT secret FROM depots WHERE depot_id=?", (depot_id,))
        return bytes(r[0][0]) if r else None

    def register_pass(self, pass_id, wallet, allowance):
        """Issuer data: a pass's offline allowance (used when records do not carry key 12)."""
        self._tx(lambda db: self._x(
            db, "INSERT INTO passes(pass_id, wallet, allowance) VALUES (?,?,?) ON CONFLICT"
            "(pass_id) DO UPDATE SET wallet=excluded.wallet, allowance=excluded.allowance",
            (bytes(pass_id), bytes(wallet), int(allowance))))

    # --- ingest ---------------------------------------------------------------------------
    def ingest(self, depot_id, idem_key, taps):
        """taps: [(device_id, seq, t, payload)]. Returns {"taps", "new", "duplicate_batch"}.

        A batch whose idempotency key was seen before is not applied again; the first
        answer is returned. The key is bound to its depot (another depot's key: conflict).
        """
        now = self.clock()
        rows = []
        for dev, seq, t, payload in taps:
            c = parse_record(payload)
            rows.append((dev, seq, c["t"] or t, c["answer"], c["reason"], c["wallet"],
                         c["pass_id"], c["proof"], c["category"], c["fare"], c["allowance"],
                         bytes(payload), c["bad"], idem_key))

        def tx(db):
            prev = self._x(db, "SELECT depot_id, n, new FROM batches WHERE idem_key=?",
                           (idem_key,)).fetchone()
            if prev is not None:
                if prev[0] != depot_id:
                    raise BackofficeError("conflict", "idempotency key of another depot", 409)
                return {"taps": prev[1], "new": prev[2], "duplicate_batch": True}
            new = 0
            for r in rows:
                cur = self._x(db, "INSERT INTO taps(device_id, seq, t, answer, reason, wallet, "
                              "pass_id, proof, category, fare, allowance, payload, bad, "
                              "batch_key) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?) "
                              "ON CONFLICT(device_id, seq) DO NOTHING", r)
                new += cur.rowcount
            self._x(db, "INSERT INTO batches(idem_key, depot_id, received_at, n, new) "
                    "VALUES (?,?,?,?,?)", (idem_key, depot_id, now, len(rows), new))
            return {"taps": len(rows), "new": new, "duplicate_batch": False}
        return self._tx(tx)

    # --- queries --------------------------------------------------------------------------
    def tap_keys(self, accepted_only=True):
        q = "SELECT device_id, seq FROM taps"
        if accepted_only:
            q += " WHERE answer = 0"
        return {(r[0], int(r[1])) for r in self._all(q)}

    def count(self):
        return self._all("SELECT COUNT(*) FROM taps")[0][0]

    def settlement(self):
        """Per wallet: accepted taps and rupiah owed, from the taps received so far."""
        return {bytes(r[0]).hex(): {"taps": int(r[1]), "rupiah": int(r[2])} for r in self._all(
            "SELECT wallet, COUNT(*), COALESCE(SUM(fare), 0) FROM taps WHERE answer = 0 AND "
            "wallet IS NOT NULL GROUP BY wallet ORDER BY wallet")}

    def proofs_used_twice(self):
        """[(proof hex, uses, validators, wallet hex)] for proofs accepted more than once
        (a proof signs one pass of one wallet, so grouping by (proof, wallet) is by proof)."""
        return [(bytes(r[0]).hex(), int(r[1]), int(r[2]), bytes(r[3]).hex() if r[3] else None)
                for r in self._all(
                    "SELECT proof, COUNT(*), COUNT(DISTINCT device_id), wallet FROM taps "
                    "WHERE answer = 0 AND proof IS NOT NULL GROUP BY proof, wallet "
                    "HAVING COUNT(*) > 1 ORDER BY proof")]

    def over_allowance(self):
        """[(pass hex, wallet hex, spent, allowance)] for passes that spent more offline (on
        all validators together) than the allowance in the pass."""
        out = []
        for pid, wallet, spent, rec_allow, issuer_allow in self._all(
                "SELECT t.pass_id, t.wallet, SUM(t.fare), MAX(t.allowance), "
                "MAX(p.allowance) FROM taps t LEFT JOIN passes p ON p.pass_id = t.pass_id "
                "WHERE t.answer = 0 AND t.pass_id IS NOT NULL GROUP BY t.pass_id, t.wallet "
                "ORDER BY t.pass_id"):
            allow = rec_allow if rec_allow is not None else issuer_allow
            if allow is not None and spent > allow:
                out.append((bytes(pid).hex(), bytes(wallet).hex() if wallet else None,
                            int(spent), int(allow)))
        return out

    def bad_records(self):
        return [(r[0], int(r[1]), r[2]) for r in
                self._all("SELECT device_id, seq, bad FROM taps WHERE bad IS NOT NULL")]

    # --- deny list ------------------------------------------------------------------------
    def deny_version(self):
        return int(self._all("SELECT COALESCE(MAX(version), 0) FROM deltas")[0][0])

    def deny_entries(self):
        return {bytes(r[0]) for r in self._all("SELECT entry FROM deny")}

    def publish(self, key, extra=()):
        """Deny what the analysis found (proof used twice: the wallet; over allowance: the
        pass) plus `extra` [(tag, id, cause)]; sign a delta for what is new. Returns the
        new version, or None if nothing changed."""
        want = {}
        for _proof, _n, _v, wallet in self.proofs_used_twice():
            if wallet:
                want[hb.deny_entry(b"W", bytes.fromhex(wallet))] = "proof used twice"
        for pid, _w, _s, _a in self.over_allowance():
            want[hb.deny_entry(b"P", bytes.fromhex(pid))] = "over allowance"
        for tag, ident, cause in extra:
            want[hb.deny_entry(tag, ident)] = cause

        def tx(db):
            have = {bytes(r[0]) for r in self._x(db, "SELECT entry FROM deny").fetchall()}
            new = sorted(set(want) - have)
            if not new:
                return None
            v = int(self._x(db, "SELECT COALESCE(MAX(version), 0) FROM deltas")
                    .fetchone()[0]) + 1
            raw = hb.sign_bundle(hb.DENY_DELTA, v, hb.delta_body(v - 1, add=new), key)
            for e in new:
                self._x(db, "INSERT INTO deny(entry, version, cause) VALUES (?,?,?)",
                        (e, v, want[e]))
            self._x(db, "INSERT INTO deltas(version, data) VALUES (?,?)", (v, raw))
            return v
        return self._tx(tx)

    def deltas_since(self, version, limit=100):
        return [bytes(r[0]) for r in self._all(
            "SELECT data FROM deltas WHERE version > ? ORDER BY version LIMIT %d" % int(limit),
            (int(version),))]


def open_store(url, clock=time.time):
    """'postgresql://…' (psycopg 3) or 'sqlite:PATH' / a plain file path (SQLite)."""
    url = str(url)
    if url.startswith(("postgresql://", "postgres://")) or url.startswith("host="):
        be = _Postgres(url)
    else:
        be = _SQLite(url[len("sqlite:"):] if url.startswith("sqlite:") else url)
    return BackofficeStore(be, clock).open()

