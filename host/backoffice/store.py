"""The back office's store and its analysis, on SQLite or PostgreSQL (same SQL, two dialects).

Trust (docs/sync-api.md 'Back-office API'): a depot is known by its own key, and reports
only for the validators registered to it; every tap carries its validator's own tag, checked
here with that validator's record key (host/synckeys.py), so a depot can neither forge nor
alter a tap. Idempotency is kept twice: a batch's idempotency key, scoped by its depot and
bound to a hash of the body, is recorded in the same transaction as its taps (a retried
upload is answered with the first answer; the same key with other content is refused),
and every tap is keyed by (device_id, journal incarnation, seq) (a tap re-packed into
another batch is still stored once). Nothing that arrives is dropped: a record that
conflicts with a stored one, or whose tag does not check, is kept as evidence with an
alarm; a new journal incarnation or a new depot database is an alarm.
"""

import hashlib
import sqlite3
import threading
import time

import cbor2

from host import bundles as hb
from host import ranges, synckeys

# tap record keys (docs/ARCHITECTURE.md 'Tap record')
K_TIME, K_CLOCK, K_CHANNEL, K_ANSWER, K_REASON, K_WALLET, K_PASS = 1, 2, 3, 4, 5, 6, 7
K_CATEGORY, K_FARE, K_PROOF, K_FARE_VERSION, K_ALLOWANCE = 8, 9, 10, 11, 12
ACCEPTED = 0

SCHEMA = """
CREATE TABLE IF NOT EXISTS depots (depot_id TEXT PRIMARY KEY, secret {B} NOT NULL);
CREATE TABLE IF NOT EXISTS validators (device_id TEXT PRIMARY KEY, record_key {B} NOT NULL);
CREATE TABLE IF NOT EXISTS validator_depots (
    device_id TEXT NOT NULL, depot_id TEXT NOT NULL, PRIMARY KEY (device_id, depot_id));
CREATE TABLE IF NOT EXISTS batches (
    depot_id TEXT NOT NULL, idem_key TEXT NOT NULL, body_sha {B} NOT NULL,
    received_at {F} NOT NULL, n INTEGER NOT NULL, new INTEGER NOT NULL, answer TEXT NOT NULL,
    PRIMARY KEY (depot_id, idem_key));
CREATE TABLE IF NOT EXISTS depot_incs (
    depot_id TEXT NOT NULL, db_inc TEXT NOT NULL, first_seen {F} NOT NULL,
    PRIMARY KEY (depot_id, db_inc));
CREATE TABLE IF NOT EXISTS device_incs (
    device_id TEXT NOT NULL, inc BIGINT NOT NULL, first_seen {F} NOT NULL,
    depot_id TEXT NOT NULL, PRIMARY KEY (device_id, inc));
CREATE TABLE IF NOT EXISTS taps (
    device_id TEXT NOT NULL, inc BIGINT NOT NULL, seq BIGINT NOT NULL, t BIGINT NOT NULL,
    answer INTEGER, reason INTEGER, wallet {B}, pass_id {B}, proof {B}, category INTEGER,
    fare BIGINT, allowance BIGINT, payload {B} NOT NULL, tag {B} NOT NULL, bad TEXT,
    depot_id TEXT NOT NULL, batch_key TEXT NOT NULL, PRIMARY KEY (device_id, inc, seq));
CREATE TABLE IF NOT EXISTS evidence (
    id {S}, device_id TEXT NOT NULL, inc BIGINT NOT NULL, seq BIGINT NOT NULL,
    t BIGINT NOT NULL, payload {B} NOT NULL, tag {B} NOT NULL, depot_id TEXT NOT NULL,
    batch_key TEXT NOT NULL, why TEXT NOT NULL, received_at {F} NOT NULL);
CREATE TABLE IF NOT EXISTS alarms (
    id {S}, at {F} NOT NULL, kind TEXT NOT NULL, depot_id TEXT, device_id TEXT,
    detail TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS taps_proof ON taps (proof);
CREATE INDEX IF NOT EXISTS taps_wallet ON taps (wallet);
CREATE TABLE IF NOT EXISTS passes (pass_id {B} PRIMARY KEY, wallet {B}, allowance BIGINT);
CREATE TABLE IF NOT EXISTS deny (entry {B} PRIMARY KEY, version INTEGER NOT NULL,
    cause TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS deltas (version INTEGER PRIMARY KEY, data {B} NOT NULL);
"""


_TAP_COLS = ("device_id, inc, seq, t, answer, reason, wallet, pass_id, proof, category, fare, "
             "allowance, payload, tag, bad, depot_id, batch_key")
_TAP_COLS_DDL = ("device_id TEXT, inc BIGINT, seq BIGINT, t BIGINT, answer INTEGER, reason "
                 "INTEGER, wallet BYTEA, pass_id BYTEA, proof BYTEA, category INTEGER, fare "
                 "BIGINT, allowance BIGINT, payload BYTEA, tag BYTEA, bad TEXT, depot_id TEXT, "
                 "batch_key TEXT")

_TAP_TYPES = ["int4", "text", "int8", "int8", "int8", "int4", "int4", "bytea", "bytea", "bytea",
              "int4", "int8", "int8", "bytea", "bytea", "text", "text", "text"]


class BackofficeError(Exception):
    """reason: malformed, bad_mac, unknown_depot, unregistered_device, conflict, store,
    bad_input, api_version."""

    def __init__(self, reason, detail="", status=400):
        super().__init__("%s%s" % (reason, ": " + detail if detail else ""))
        self.reason = reason
        self.detail = detail
        self.status = status


# parse_record's columns in the order they are checked: (column, record key, a number?)
_REC_COLS = (("t", K_TIME, True), ("answer", K_ANSWER, True), ("reason", K_REASON, True),
             ("wallet", K_WALLET, False), ("pass_id", K_PASS, False), ("proof", K_PROOF, False),
             ("category", K_CATEGORY, True), ("fare", K_FARE, True),
             ("allowance", K_ALLOWANCE, True))
_NO_COLS = dict(t=0, answer=None, reason=None, wallet=None, pass_id=None, proof=None,
                category=None, fare=None, allowance=None, bad=None)


def parse_record(payload):
    """Tap record bytes -> dict of columns; a record that does not parse keeps `bad`.
    (Called once per tap on ingest: a flat loop, no closures, no string work unless a
    value is out of range.)"""
    cols = dict(_NO_COLS)
    read = False    # every field read: a record without an answer keeps its other columns
    try:
        rec = cbor2.loads(payload)
        if not isinstance(rec, dict):
            raise ValueError("not a map")
        get = rec.get
        for col, k, num in _REC_COLS:
            v = get(k)
            if v is None:
                continue
            if num:
                # every number within docs/ranges.md (a fare of 2^63-1 would overflow the
                # sums): a record outside is kept aside (`bad`, alarm), never settled
                cols[col] = ranges.check_record_field(k, v)
            elif not isinstance(v, bytes) or len(v) > 64:
                raise ValueError("field %d" % k)
            else:
                cols[col] = v
        read = True
        if not cols["t"]:
            cols["t"] = 0
        if cols["answer"] is None:
            raise ValueError("no answer")
    except (ValueError, TypeError, cbor2.CBORDecodeError, RecursionError) as e:
        cols = dict(cols if read else _NO_COLS, answer=None,
                    bad=str(e)[:100] or type(e).__name__)
    return cols


class _SQLite:
    name = "sqlite"
    B, F, S = "BLOB", "REAL", "INTEGER PRIMARY KEY"

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
    B, F, S = "BYTEA", "DOUBLE PRECISION", "BIGSERIAL PRIMARY KEY"

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
            db = self.be.conn()
            if self.be.name == "postgresql":
                cols = [r[0] for r in db.execute(
                    "SELECT column_name FROM information_schema.columns WHERE "
                    "table_name='taps' AND table_schema = current_schema()").fetchall()]
            else:
                cols = [r[1] for r in db.execute("PRAGMA table_info(taps)").fetchall()]
            if cols and "inc" not in cols:
                raise BackofficeError("store", "a back-office store of sync API v1 (taps "
                                      "without journal incarnations): start a new store", 503)
            self.be.script(db, SCHEMA.format(B=self.be.B, F=self.be.F, S=self.be.S))
        except BackofficeError:
            raise
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

    def register_validator(self, device_id, depots, secret=None, record_key=None):
        """A validator, the depots allowed to report for it, and its record key — derived
        here from its secret S (which is not kept) or given ready-derived."""
        if record_key is None:
            if secret is None or len(bytes(secret)) < 16:
                raise BackofficeError("bad_input", "a device secret of >= 16 bytes or its "
                                      "record key")
            record_key = synckeys.derive(secret, synckeys.RECORD)
        record_key = bytes(record_key)
        if not device_id or len(device_id) > 64 or len(record_key) != 32 or not depots:
            raise BackofficeError("bad_input", "device id, one depot or more, 32-byte key")

        def tx(db):
            self._x(db, "INSERT INTO validators(device_id, record_key) VALUES (?, ?) ON "
                    "CONFLICT(device_id) DO UPDATE SET record_key=excluded.record_key",
                    (device_id, record_key))
            for d in depots:
                if self._x(db, "SELECT 1 FROM depots WHERE depot_id=?", (d,)).fetchone() is None:
                    raise BackofficeError("bad_input", "unknown depot %s" % d)
                self._x(db, "INSERT INTO validator_depots(device_id, depot_id) VALUES (?, ?) "
                        "ON CONFLICT DO NOTHING", (device_id, d))
        self._tx(tx)

    def _alarm(self, db, kind, depot_id, device_id, detail):
        self._x(db, "INSERT INTO alarms(at, kind, depot_id, device_id, detail) VALUES "
                "(?,?,?,?,?)", (self.clock(), kind, depot_id, device_id, detail))

    def alarms(self):
        return [dict(at=r[0], kind=r[1], depot_id=r[2], device_id=r[3], detail=r[4])
                for r in self._all("SELECT at, kind, depot_id, device_id, detail FROM alarms "
                                   "ORDER BY id")]

    def evidence(self):
        """[(device_id, inc, seq, why, depot_id)] kept aside: conflicts and bad tags."""
        return [(r[0], int(r[1]), int(r[2]), r[3], r[4]) for r in self._all(
            "SELECT device_id, inc, seq, why, depot_id FROM evidence ORDER BY id")]

    def register_pass(self, pass_id, wallet, allowance):
        """Issuer data: a pass's offline allowance (used when records do not carry key 12)."""
        try:
            allowance = ranges.check(allowance, "allowance")
        except ValueError as e:
            raise BackofficeError("bad_input", str(e)) from None
        self._tx(lambda db: self._x(
            db, "INSERT INTO passes(pass_id, wallet, allowance) VALUES (?,?,?) ON CONFLICT"
            "(pass_id) DO UPDATE SET wallet=excluded.wallet, allowance=excluded.allowance",
            (bytes(pass_id), bytes(wallet), int(allowance))))

    # --- ingest ---------------------------------------------------------------------------
    def ingest(self, depot_id, idem_key, taps, body_sha=None):
        """taps: [(device_id, inc, seq, t, payload, tag)] from depot `depot_id` (already
        authenticated). Returns {"taps", "new", "duplicates", "conflicts", "forged",
        "duplicate_batch"}.

        The idempotency key is scoped by the depot: another depot's keys are another
        namespace (it can neither replay nor block them). A key seen before with the same
        body (`body_sha`) gets the first answer, not applied again; with another body it is
        refused (409 conflict) with an alarm — never answered with an old answer. A tap of a
        validator not registered to this depot refuses the whole batch (403), with an alarm;
        nothing of it is stored and the depot keeps it pending."""
        import json
        body_sha = body_sha or hashlib.sha256(repr(taps).encode()).digest()
        devices = sorted(set(t[0] for t in taps))
        dup, keys = self._pre_check(depot_id, idem_key, body_sha, devices)
        if dup is not None:
            return dup
        now = self.clock()
        rows, bad_tag = [], []
        taggers = {dev: synckeys.record_tagger(keys[dev], dev) for dev in devices}
        for dev, inc, seq, t, payload, tag in taps:
            want = taggers[dev](inc, seq, t, payload)
            if not synckeys.equal(want, bytes(tag)):
                bad_tag.append((dev, inc, seq, t, bytes(payload), bytes(tag)))
                continue
            c = parse_record(payload)
            rows.append((dev, inc, seq, c["t"] or t, c["answer"], c["reason"], c["wallet"],
                         c["pass_id"], c["proof"], c["category"], c["fare"], c["allowance"],
                         bytes(payload), bytes(tag), c["bad"], depot_id, idem_key))
        dbinc = _db_inc(depot_id, idem_key)

        def tx(db):
            prev = self._x(db, "SELECT answer FROM batches WHERE depot_id=? AND idem_key=?",
                           (depot_id, idem_key)).fetchone()
            if prev is not None:  # the same batch raced in on another connection
                return dict(json.loads(prev[0]), duplicate_batch=True)
            if dbinc is not None and self._x(
                    db, "SELECT 1 FROM depot_incs WHERE depot_id=? AND db_inc=?",
                    (depot_id, dbinc)).fetchone() is None:
                others = self._x(db, "SELECT COUNT(*) FROM depot_incs WHERE depot_id=?",
                                 (depot_id,)).fetchone()[0]
                self._x(db, "INSERT INTO depot_incs(depot_id, db_inc, first_seen) VALUES "
                        "(?,?,?)", (depot_id, dbinc, now))
                if others:
                    self._alarm(db, "depot_rebuilt", depot_id, None,
                                "depot %s speaks with a new database (incarnation %s): it was "
                                "rebuilt or restored - batches it had not delivered from the "
                                "old database are missing unless they arrive again"
                                % (depot_id, dbinc))
            new = dup = conf = 0
            incs = []   # each (validator, incarnation) of the batch once, in arrival order
            for r in rows:
                if (r[0], r[1]) not in incs:
                    incs.append((r[0], r[1]))
            devs = sorted(set(d for d, _ in incs))
            known = {(r[0], int(r[1])) for r in self._x(
                db, "SELECT device_id, inc FROM device_incs WHERE device_id IN (%s)"
                % ",".join("?" * len(devs)), devs).fetchall()} if devs else set()
            for dev, inc in incs:
                if (dev, inc) not in known:
                    prior = self._x(db, "SELECT COUNT(*) FROM device_incs WHERE device_id=?",
                                    (dev,)).fetchone()[0]
                    self._x(db, "INSERT INTO device_incs(device_id, inc, first_seen, depot_id) "
                            "VALUES (?,?,?,?)", (dev, inc, now, depot_id))
                    if prior:
                        self._alarm(db, "new_incarnation", depot_id, dev,
                                    "validator %s has a new journal incarnation %08x (its "
                                    "journal was wiped or replaced): taps it had not uploaded "
                                    "from the old one are missing" % (dev, inc))
            skipped = self._insert_taps(db, rows)   # the rows whose key was already stored
            new = len(rows) - len(skipped)
            old_keys = {(r[0], r[1], r[2]) for r in skipped}
            for r in rows:  # a record that breaks docs/records.md or docs/ranges.md
                if r[14] is not None and (r[0], r[1], r[2]) not in old_keys:
                    self._alarm(db, "bad_record", depot_id, r[0],
                                "%s incarnation %08x seq %d (tag checks): %s; stored aside, "
                                "never settled" % (r[0], r[1], r[2], r[14]))
            for r in skipped:
                dev, inc, seq = r[0], r[1], r[2]
                old = self._x(db, "SELECT payload, tag FROM taps WHERE device_id=? AND inc=? "
                              "AND seq=?", (dev, inc, seq)).fetchone()
                if bytes(old[0]) == r[12] and bytes(old[1]) == r[13]:
                    dup += 1
                    continue
                conf += 1  # both tags check: the validator itself wrote two records
                self._evidence(db, dev, inc, seq, r[3], r[12], r[13], depot_id, idem_key,
                               "conflict", now)
                self._alarm(db, "conflict", depot_id, dev,
                            "%s incarnation %08x seq %d arrived with other bytes than the "
                            "stored record (both tagged by the validator): kept as evidence"
                            % (dev, inc, seq))
            for dev, inc, seq, t, payload, tag in bad_tag:
                self._evidence(db, dev, inc, seq, t, payload, tag, depot_id, idem_key,
                               "bad_tag", now)
                self._alarm(db, "forged", depot_id, dev,
                            "depot %s sent %s incarnation %08x seq %d with a tag that is not "
                            "the validator's: not counted, kept as evidence"
                            % (depot_id, dev, inc, seq))
            out = {"taps": len(taps), "new": new, "duplicates": dup, "conflicts": conf,
                   "forged": len(bad_tag), "duplicate_batch": False}
            self._x(db, "INSERT INTO batches(depot_id, idem_key, body_sha, received_at, n, new, "
                    "answer) VALUES (?,?,?,?,?,?,?)", (depot_id, idem_key, body_sha, now,
                                                       len(taps), new, json.dumps(out)))
            return out
        return self._tx(tx)

    def _insert_taps(self, db, rows):
        """Insert the batch's rows with multi-row INSERTs (one round trip per chunk, not per
        row: PostgreSQL over a socket pays ~0.1 ms a statement); returns the rows that were
        not inserted because their (device, incarnation, seq) is stored (or came earlier in
        this batch), in batch order."""
        if self.be.name == "postgresql":
            return self._insert_taps_copy(db, rows)
        per = 50    # SQLite: <= 999 parameters a statement
        skipped = []
        for i in range(0, len(rows), per):
            chunk = rows[i:i + per]
            got = self._x(db, "INSERT INTO taps(device_id, inc, seq, t, answer, reason, wallet, "
                          "pass_id, proof, category, fare, allowance, payload, tag, bad, "
                          "depot_id, batch_key) VALUES " + ",".join(
                              ["(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"] * len(chunk)) +
                          " ON CONFLICT(device_id, inc, seq) DO NOTHING RETURNING device_id, "
                          "inc, seq", [v for r in chunk for v in r]).fetchall()
            fresh = {(d, int(n), int(q)) for d, n, q in got}
            for r in chunk:
                k = (r[0], r[1], r[2])
                if k in fresh:
                    fresh.discard(k)    # a second copy in the same batch is not new
                else:
                    skipped.append(r)
        return skipped

    def _insert_taps_copy(self, db, rows):
        """PostgreSQL: COPY the batch into a temporary table (emptied at commit), then one
        INSERT ... SELECT in batch order; the same result as _insert_taps. (A multi-row
        INSERT of 500 rows is slow here: psycopg parses the long query text every time.)
        The usual batch is all new taps: they are first COPYed straight into `taps` under a
        savepoint; a key already stored (a retry, a conflict) undoes that and takes the
        staging path."""
        db.execute("SAVEPOINT direct")
        try:
            with self._copy_cursor(db).copy("COPY taps (%s) FROM STDIN (FORMAT BINARY)" % _TAP_COLS) as cp:
                cp.set_types(_TAP_TYPES[1:])
                for r in rows:
                    cp.write_row(r)
            db.execute("RELEASE SAVEPOINT direct")
            return []
        except self.be.psycopg.errors.UniqueViolation:
            db.execute("ROLLBACK TO SAVEPOINT direct")
        db.execute("CREATE TEMP TABLE IF NOT EXISTS tap_stage (ord INTEGER, " + _TAP_COLS_DDL +
                   ") ON COMMIT DELETE ROWS")
        with self._copy_cursor(db).copy("COPY tap_stage (ord, %s) FROM STDIN (FORMAT BINARY)"
                              % _TAP_COLS) as cp:
            cp.set_types(_TAP_TYPES)
            for i, r in enumerate(rows):
                cp.write_row((i,) + tuple(r))
        got = db.execute("INSERT INTO taps (%s) SELECT %s FROM tap_stage ORDER BY ord ON "
                         "CONFLICT (device_id, inc, seq) DO NOTHING RETURNING device_id, inc, "
                         "seq" % (_TAP_COLS, _TAP_COLS)).fetchall()
        db.execute("TRUNCATE tap_stage")
        fresh = {(d, int(n), int(q)) for d, n, q in got}
        skipped = []
        for r in rows:
            k = (r[0], r[1], r[2])
            if k in fresh:
                fresh.discard(k)
            else:
                skipped.append(r)
        return skipped

    def _copy_cursor(self, db):
        """A cursor whose binary COPY writes bytea with psycopg's C dumper for bytes:
        set_types("bytea") would otherwise pick the Python dumper of the DB-API `Binary`
        wrapper (registered last for that oid), five Python calls a tap."""
        from psycopg.adapt import PyFormat
        cur = db.cursor()
        cur.adapters.register_dumper(None, cur.adapters.get_dumper(bytes, PyFormat.BINARY))
        return cur

    def _evidence(self, db, dev, inc, seq, t, payload, tag, depot_id, key, why, now):
        self._x(db, "INSERT INTO evidence(device_id, inc, seq, t, payload, tag, depot_id, "
                "batch_key, why, received_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (dev, inc, seq, t, payload, tag, depot_id, key, why, now))

    def _pre_check(self, depot_id, idem_key, body_sha, devices):
        """(None, {device: record key}) if the batch may be applied; (the first answer,
        None) for a retried batch; else BackofficeError, with its alarm committed first."""
        import json

        def tx(db):
            prev = self._x(db, "SELECT body_sha, answer FROM batches WHERE depot_id=? AND "
                           "idem_key=?", (depot_id, idem_key)).fetchone()
            if prev is not None:
                if bytes(prev[0]) == body_sha:
                    return "dup", dict(json.loads(prev[1]), duplicate_batch=True)
                self._alarm(db, "key_reuse", depot_id, None,
                            "depot %s sent idempotency key %s again with other content: "
                            "refused (the first batch stands)" % (depot_id, idem_key))
                return "reuse", idem_key
            # the batch's validators registered to this depot, in one query
            got = {r[0]: bytes(r[1]) for r in self._x(
                db, "SELECT v.device_id, v.record_key FROM validators v JOIN validator_depots "
                "d ON d.device_id = v.device_id WHERE d.depot_id=? AND v.device_id IN (%s)"
                % ",".join("?" * len(devices)), [depot_id] + list(devices)).fetchall()} \
                if devices else {}
            keys = {}
            for dev in devices:
                r = (got[dev],) if dev in got else None
                if r is None:
                    self._alarm(db, "unregistered", depot_id, dev,
                                "depot %s reported for validator %s, which is not registered "
                                "to it: batch %s refused" % (depot_id, dev, idem_key))
                    return "unregistered", dev
                keys[dev] = bytes(r[0])
            return "ok", keys
        what, val = self._tx(tx)
        if what == "dup":
            return val, None
        if what == "reuse":
            raise BackofficeError("conflict", "idempotency key %s was used before for other "
                                  "content" % val, 409)
        if what == "unregistered":
            raise BackofficeError("unregistered_device", "%s is not registered to depot %s"
                                  % (val, depot_id), 403)
        return None, val

    # --- queries --------------------------------------------------------------------------
    def tap_keys(self, accepted_only=True, with_inc=False):
        q = "SELECT device_id, seq, inc FROM taps"
        if accepted_only:
            q += " WHERE answer = 0"
        if with_inc:
            return {(r[0], int(r[2]), int(r[1])) for r in self._all(q)}
        return {(r[0], int(r[1])) for r in self._all(q)}

    def gaps(self):
        """Holes in each validator's sequence numbers, per journal incarnation: taps a depot
        has not (yet) delivered. [(device_id, inc, first_missing, last_missing)]."""
        return [(r[0], int(r[1]), int(r[2]), int(r[3])) for r in self._all(
            "SELECT device_id, inc, prev + 1, seq - 1 FROM (SELECT device_id, inc, seq, "
            "LAG(seq) OVER (PARTITION BY device_id, inc ORDER BY seq) AS prev FROM taps) g "
            "WHERE prev IS NOT NULL AND seq - prev > 1 ORDER BY device_id, inc, prev")]

    def count(self):
        return self._all("SELECT COUNT(*) FROM taps")[0][0]

    def settlement(self):
        """Per wallet: accepted taps and rupiah owed, from the taps received so far."""
        return {bytes(r[0]).hex(): {"taps": int(r[1]), "rupiah": int(r[2])} for r in self._all(
            "SELECT wallet, COUNT(*), COALESCE(SUM(fare), 0) FROM taps WHERE answer = 0 AND "
            "wallet IS NOT NULL AND fare BETWEEN 0 AND %d GROUP BY wallet ORDER BY wallet"
            % ranges.MAX_FARE)}  # the bound: a store from before the range check cannot overflow

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
                "WHERE t.answer = 0 AND t.pass_id IS NOT NULL AND t.fare BETWEEN 0 AND %d "
                "GROUP BY t.pass_id, t.wallet ORDER BY t.pass_id" % ranges.MAX_FARE):
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



def _db_inc(depot_id, key):
    """The depot database incarnation named in an idempotency key "<depot>:<db inc>:<n>"."""
    parts = key.split(":")
    if len(parts) == 3 and parts[0] == depot_id and parts[1]:
        return parts[1]
    return None
