"""Results store: screening results and reader decisions in one SQLite file.

One database per user data folder (default `core.paths.store_path()`).

- Results are keyed by (study, file path, model hash) and carry the file's size
  and modification time (ns) at the moment it was stored: a result is valid
  only while the file is unchanged, so reopening a screened study is instant
  and a changed file, or another model, is screened again.
- Every write is committed at once (WAL journal, synchronous=FULL): a killed
  process loses nothing it had committed (tests/test_store_safety.py kills a
  writer mid-loop), and an OS crash or power cut loses nothing committed
  either (each commit is synced; the cost is small next to screening).
- A busy database (another PneumoScan, a backup tool or a viewer holding the
  lock) is waited for (SQLite busy timeout) and the write retried with
  back-off for up to `BUSY_RETRY_S`; only then is it a `StoreError`.
- Reader decisions are append-only: undo marks a decision undone, history is
  never deleted.

Thread safety: one SQLite connection per thread (`threading.local`), so a
worker thread can write results while the GUI thread reads; WAL lets readers
and the writer run at once. Paths (files and study folders) are stored
resolved: absolute, symlinks followed.
"""
from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from core import paths
from core.screening.results import DECISIONS, RECORDED_KINDS, SCREEN_ANYWAY, ScreenResult, reader_label

SCHEMA_VERSION = 2

# Each entry upgrades the schema from version i to i + 1 (PRAGMA user_version).
_MIGRATIONS = {
    0: """
    CREATE TABLE results (
        study        TEXT    NOT NULL,
        path         TEXT    NOT NULL,
        model_hash   TEXT    NOT NULL,
        size         INTEGER NOT NULL,
        mtime_ns     INTEGER NOT NULL,
        model        TEXT    NOT NULL,
        model_version TEXT   NOT NULL,
        probability  REAL,
        threshold    REAL    NOT NULL,
        error        TEXT,
        kind         TEXT    NOT NULL,
        meta         TEXT    NOT NULL,
        image_shape  TEXT,
        cam          BLOB,
        cam_shape    TEXT,
        stored_at    TEXT    NOT NULL,
        PRIMARY KEY (study, path, model_hash)
    );
    CREATE INDEX results_by_path ON results (path, model_hash);
    CREATE TABLE decisions (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        study        TEXT    NOT NULL,
        path         TEXT    NOT NULL,
        decision     TEXT    NOT NULL,
        ai_call      TEXT,
        reader_label TEXT,
        time         TEXT    NOT NULL,
        model        TEXT    NOT NULL,
        model_hash   TEXT    NOT NULL,
        probability  REAL,
        threshold    REAL    NOT NULL,
        undone       INTEGER NOT NULL DEFAULT 0,
        undone_time  TEXT
    );
    CREATE INDEX decisions_by_study ON decisions (study, path);
    CREATE INDEX decisions_by_path ON decisions (path);
    """,
    # Scope check (core.models.scope): the reason an image is out of scope ("" = in scope)
    # and the content detector's score. NULL scope = stored before the check
    # existed: get_result does not reuse such rows, so they are screened again.
    1: """
    ALTER TABLE results ADD COLUMN scope TEXT;
    ALTER TABLE results ADD COLUMN scope_score REAL;
    """,
}

_MISSING = (-1, -1)  # (size, mtime_ns) of a file that cannot be stat'ed


BUSY_TIMEOUT_S = 5.0  # SQLite's own wait for a lock, per statement
BUSY_RETRY_S = 60.0  # then whole operations are retried this long


class StoreError(Exception):
    """The results store cannot be opened or used (readable message)."""


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


@dataclass
class Decision:
    id: int
    study: str
    path: str
    decision: str
    ai_call: str | None
    reader_label: str | None
    time: str  # UTC ISO 8601
    model: str
    model_hash: str
    probability: float | None
    threshold: float
    undone: bool
    reader: str = ""  # who decided (settings' reader name); "" for decisions before readers were recorded
    reason: str = ""  # SCREEN_ANYWAY: the scope reason the reader overrode


@dataclass
class SignOff:
    """A reader's sign-off of a study: every image read, report ready."""
    id: int
    study: str
    reader: str
    time: str  # UTC ISO 8601
    model: str
    images: int


# Reading additions: side tables created idempotently at open (no schema version
# step, so they never collide with the numbered migrations above).
# decision_details: the reader and the file's identity (size, mtime) at decision
# time, so a decision follows the image into any folder view but not a changed file.
_READING_TABLES = """
CREATE TABLE IF NOT EXISTS decision_details (
    decision_id INTEGER PRIMARY KEY,
    reader      TEXT    NOT NULL DEFAULT '',
    size        INTEGER,
    mtime_ns    INTEGER
);
CREATE TABLE IF NOT EXISTS study_signoffs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    study       TEXT    NOT NULL,
    reader      TEXT    NOT NULL,
    time        TEXT    NOT NULL,
    model       TEXT    NOT NULL,
    images      INTEGER NOT NULL,
    withdrawn   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS signoffs_by_study ON study_signoffs (study);
CREATE TABLE IF NOT EXISTS decision_reasons (
    decision_id INTEGER PRIMARY KEY,
    reason      TEXT    NOT NULL
)
"""
_SQL_CHUNK = 500  # paths per IN (...) query (SQLite's variable limit is 999 on old builds)


def _resolved(path) -> str:
    return str(Path(path).expanduser().resolve())


def _file_signature(path: str) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except OSError:
        return _MISSING
    return st.st_size, st.st_mtime_ns


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _cam_to_blob(cam: np.ndarray | None) -> tuple[bytes | None, str | None]:
    # float16 is plenty for a [0, 1] map and halves the blob (7x7 -> 98 bytes).
    if cam is None:
        return None, None
    cam = np.asarray(cam, dtype=np.float16)
    return cam.tobytes(), json.dumps(list(cam.shape))


def _cam_from_blob(blob: bytes | None, shape: str | None) -> np.ndarray | None:
    if blob is None or shape is None:
        return None
    return np.frombuffer(blob, dtype=np.float16).reshape(json.loads(shape)).astype(np.float32)


def _new_decision(study_folder, path, decision: str, ai_call, model: str, model_hash: str, probability,
                  threshold: float, **extra) -> Decision:
    """A decision record as it is written now: the AI's state at that moment, resolved paths."""
    return Decision(
        id=0, study=_resolved(study_folder), path=_resolved(path), decision=decision,
        ai_call=ai_call, reader_label=reader_label(decision, ai_call), time=_utc_now(),
        model=model, model_hash=model_hash,
        probability=None if probability is None else float(probability),
        threshold=float(threshold), undone=False, **extra)


class ResultStore:
    def __init__(self, db_path=None):
        self.db_path = Path(db_path) if db_path is not None else paths.store_path()
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()  # guards _connections and the migration
        self._closed = False
        self._migrate(self._conn())
        self._ensure_reading_tables(self._conn())

    # -- connections ---------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use)."""
        if self._closed:
            raise StoreError("the results store is closed")
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                # check_same_thread=False only so close() may close every
                # thread's connection; each is still used by its own thread.
                conn = sqlite3.connect(str(self.db_path), timeout=BUSY_TIMEOUT_S, check_same_thread=False)
                self._retrying(lambda: conn.execute("PRAGMA journal_mode=WAL"))
                conn.execute("PRAGMA synchronous=FULL")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot open results store {self.db_path}: {exc}") from None
            conn.row_factory = sqlite3.Row
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def _retrying(self, operation):
        """Run `operation` (one transaction or query), retrying while the
        database is busy; any other database error becomes a StoreError."""
        deadline = time.monotonic() + BUSY_RETRY_S
        delay = 0.05
        while True:
            try:
                return operation()
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() + delay > deadline:
                    raise StoreError(f"results store {self.db_path} is unavailable: {exc}") from None
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    def _write(self, sql: str, params=()) -> sqlite3.Cursor:
        """One statement in its own committed transaction (busy: retried)."""
        def attempt():
            conn = self._conn()
            with conn:  # commits, or rolls back on error
                return conn.execute(sql, params)
        return self._retrying(attempt)

    def _read(self, sql: str, params=()) -> list[sqlite3.Row]:
        return self._retrying(lambda: self._conn().execute(sql, params).fetchall())

    def _migrate(self, conn: sqlite3.Connection) -> None:
        # BEGIN IMMEDIATE takes the write lock first, so two processes opening a
        # new store at once cannot both create the tables.
        with self._lock:
            self._retrying(lambda: conn.execute("BEGIN IMMEDIATE"))
            try:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise StoreError(f"results store {self.db_path} was written by a newer PneumoScan "
                                     f"(schema {version}, this version reads up to {SCHEMA_VERSION})")
                for step in range(version, SCHEMA_VERSION):
                    for statement in _MIGRATIONS[step].split(";"):
                        if statement.strip():
                            conn.execute(statement)
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                conn.commit()
            except BaseException:
                conn.rollback()
                raise

    def _ensure_reading_tables(self, conn: sqlite3.Connection) -> None:
        def create():
            with conn:
                for statement in _READING_TABLES.split(";"):
                    if statement.strip():
                        conn.execute(statement)
        with self._lock:
            self._retrying(create)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for conn in self._connections:
                conn.close()
            self._connections.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- results -------------------------------------------------------------

    def put_result(self, study_folder, result: ScreenResult) -> None:
        """Store one result and commit at once (replaces the same file+model)."""
        path = _resolved(result.path)
        size, mtime_ns = _file_signature(path)
        cam, cam_shape = _cam_to_blob(result.cam)
        row = (
            _resolved(study_folder), path, result.model_hash, size, mtime_ns,
            result.model, str(result.model_version),
            None if result.probability is None else float(result.probability),
            float(result.threshold), result.error, result.kind,
            json.dumps(result.meta or {}, default=str),
            None if result.image_shape is None else json.dumps([int(v) for v in result.image_shape]),
            cam, cam_shape, _utc_now(),
            result.scope or "", None if result.scope_score is None else float(result.scope_score),
        )
        self._write("INSERT OR REPLACE INTO results VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", row)

    def get_result(self, path, model_hash: str) -> ScreenResult | None:
        """The stored result, or None when absent or the file changed since."""
        path = _resolved(path)
        size, mtime_ns = _file_signature(path)
        if (size, mtime_ns) == _MISSING:
            return None
        rows = self._read(
            "SELECT * FROM results WHERE path=? AND model_hash=? AND size=? AND mtime_ns=? "
            "AND scope IS NOT NULL ORDER BY stored_at DESC LIMIT 1", (path, model_hash, size, mtime_ns))
        return self._to_result(rows[0]) if rows else None

    def study_results(self, study_folder, model_hash: str) -> list[ScreenResult]:
        """Valid results of a study for one model (files changed since are left out), by path."""
        rows = self._read(
            "SELECT * FROM results WHERE study=? AND model_hash=? ORDER BY path",
            (_resolved(study_folder), model_hash))
        return [self._to_result(row) for row in rows
                if _file_signature(row["path"]) == (row["size"], row["mtime_ns"])]

    @staticmethod
    def _to_result(row: sqlite3.Row) -> ScreenResult:
        shape = json.loads(row["image_shape"]) if row["image_shape"] else None
        return ScreenResult(
            path=row["path"], probability=row["probability"], threshold=row["threshold"],
            model=row["model"], model_version=row["model_version"], model_hash=row["model_hash"],
            error=row["error"], cam=_cam_from_blob(row["cam"], row["cam_shape"]),
            kind=row["kind"], meta=json.loads(row["meta"]),
            image_shape=tuple(shape) if shape else None,
            scope=row["scope"] or "", scope_score=row["scope_score"],
        )

    # -- reader decisions ----------------------------------------------------

    def add_decision(self, study_folder, path, decision: str, *, ai_call: str | None, model: str,
                     model_hash: str, probability: float | None, threshold: float) -> Decision:
        """Record a reader decision with the AI's state at that moment."""
        if decision not in DECISIONS:
            raise ValueError(f"unknown decision {decision!r} (expected one of {', '.join(DECISIONS)})")
        record = _new_decision(study_folder, path, decision, ai_call, model, model_hash, probability, threshold)
        cursor = self._write(
            "INSERT INTO decisions (study, path, decision, ai_call, reader_label, time, model, "
            "model_hash, probability, threshold) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (record.study, record.path, record.decision, record.ai_call, record.reader_label,
             record.time, record.model, record.model_hash, record.probability, record.threshold))
        record.id = cursor.lastrowid
        return record

    def undo_decision(self, decision_id: int) -> None:
        """Mark a decision undone (kept in the history). Undoing twice is a no-op."""
        cursor = self._write(
            "UPDATE decisions SET undone=1, undone_time=COALESCE(undone_time, ?) WHERE id=?",
            (_utc_now(), int(decision_id)))
        if cursor.rowcount == 0:
            raise KeyError(f"no decision with id {decision_id}")

    def decision_history(self, path) -> list[Decision]:
        """Every decision on a file, oldest first, undone ones flagged."""
        rows = self._read("SELECT * FROM decisions WHERE path=? ORDER BY id", (_resolved(path),))
        return [self._to_decision(row) for row in rows]

    def latest_decisions(self, study_folder) -> dict[str, Decision]:
        """path -> the newest decision that is not undone, for one study."""
        rows = self._read("SELECT * FROM decisions WHERE study=? AND undone=0 AND decision != ? ORDER BY id",
                          (_resolved(study_folder), SCREEN_ANYWAY))
        return {row["path"]: self._to_decision(row) for row in rows}  # later rows win

    @staticmethod
    def _to_decision(row: sqlite3.Row) -> Decision:
        return Decision(
            id=row["id"], study=row["study"], path=row["path"], decision=row["decision"],
            ai_call=row["ai_call"], reader_label=row["reader_label"], time=row["time"],
            model=row["model"], model_hash=row["model_hash"], probability=row["probability"],
            threshold=row["threshold"], undone=bool(row["undone"]))

    # -- reading: decisions per image, readers, sign-off -----------------------

    def record_decision(self, study_folder, path, decision: str, *, ai_call: str | None, model: str,
                        model_hash: str, probability: float | None, threshold: float,
                        reader: str = "", reason: str = "") -> Decision:
        """A decision (as `add_decision`, or SCREEN_ANYWAY with the scope `reason` it overrode)
        plus who decided and the file's identity at that moment, in one transaction (busy: retried)."""
        if decision not in RECORDED_KINDS:
            raise ValueError(f"unknown decision {decision!r} (expected one of {', '.join(RECORDED_KINDS)})")
        record = _new_decision(study_folder, path, decision, ai_call, model, model_hash, probability, threshold,
                               reader=str(reader or ""), reason=str(reason or ""))
        size, mtime_ns = _file_signature(record.path)
        identity = (None, None) if size < 0 else (size, mtime_ns)

        def attempt():
            conn = self._conn()
            with conn:  # both rows or neither
                cursor = conn.execute(
                    "INSERT INTO decisions (study, path, decision, ai_call, reader_label, time, model, "
                    "model_hash, probability, threshold) VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (record.study, record.path, record.decision, record.ai_call, record.reader_label,
                     record.time, record.model, record.model_hash, record.probability, record.threshold))
                conn.execute("INSERT OR REPLACE INTO decision_details VALUES (?,?,?,?)",
                             (cursor.lastrowid, record.reader, *identity))
                if record.reason:
                    conn.execute("INSERT OR REPLACE INTO decision_reasons VALUES (?,?)",
                                 (cursor.lastrowid, record.reason))
                return cursor.lastrowid

        record.id = self._retrying(attempt)
        return record

    _DETAILED = ("SELECT d.*, COALESCE(x.reader, '') AS reader, x.size AS file_size, "
                 "x.mtime_ns AS file_mtime_ns, COALESCE(r.reason, '') AS reason FROM decisions d "
                 "LEFT JOIN decision_details x ON x.decision_id = d.id "
                 "LEFT JOIN decision_reasons r ON r.decision_id = d.id ")

    def image_decisions(self, paths, kinds=DECISIONS) -> dict[str, Decision]:
        """path -> the newest reader decision not undone, made in any study folder, on this
        same file (a decision recorded on other content, same path, is left out)."""
        kinds = tuple(kinds)
        keys = [_resolved(p) for p in paths]
        latest: dict[str, Decision] = {}
        for start in range(0, len(keys), _SQL_CHUNK):
            chunk = keys[start:start + _SQL_CHUNK]
            rows = self._read(
                self._DETAILED + f"WHERE d.undone=0 AND d.path IN ({','.join('?' * len(chunk))}) ORDER BY d.id",
                chunk)
            signatures: dict[str, tuple[int, int]] = {}
            for row in rows:
                if row["decision"] not in kinds:
                    continue
                if row["file_size"] is not None:
                    now = signatures.setdefault(row["path"], _file_signature(row["path"]))
                    if now != (row["file_size"], row["file_mtime_ns"]):
                        continue
                latest[row["path"]] = self._to_detailed_decision(row)  # later rows win
        return latest

    def image_overrides(self, paths) -> dict[str, Decision]:
        """path -> the newest SCREEN_ANYWAY not undone (as image_decisions): the reader asked
        for the AI call on this out-of-scope image."""
        return self.image_decisions(paths, kinds=(SCREEN_ANYWAY,))

    def image_history(self, path) -> list[Decision]:
        """Every decision on a file, from any study folder, oldest first, with readers."""
        rows = self._read(self._DETAILED + "WHERE d.path=? ORDER BY d.id", (_resolved(path),))
        return [self._to_detailed_decision(row) for row in rows]

    def _to_detailed_decision(self, row: sqlite3.Row) -> Decision:
        decision = self._to_decision(row)
        decision.reader = row["reader"] or ""
        decision.reason = row["reason"] or ""
        return decision

    def sign_off(self, study_folder, reader: str, model: str, images: int) -> SignOff:
        """Record that `reader` signed the study off (earlier sign-offs stay in the history)."""
        record = SignOff(id=0, study=_resolved(study_folder), reader=str(reader or ""), time=_utc_now(),
                         model=str(model), images=int(images))
        cursor = self._write(
            "INSERT INTO study_signoffs (study, reader, time, model, images) VALUES (?,?,?,?,?)",
            (record.study, record.reader, record.time, record.model, record.images))
        record.id = cursor.lastrowid
        return record

    def withdraw_sign_off(self, study_folder) -> None:
        """Re-open a signed-off study (the sign-off stays recorded as withdrawn)."""
        self._write("UPDATE study_signoffs SET withdrawn=1 WHERE study=?", (_resolved(study_folder),))

    def study_sign_off(self, study_folder) -> SignOff | None:
        """The study's current sign-off, or None while it is open."""
        rows = self._read("SELECT * FROM study_signoffs WHERE study=? AND withdrawn=0 ORDER BY id DESC LIMIT 1",
                          (_resolved(study_folder),))
        if not rows:
            return None
        row = rows[0]
        return SignOff(id=row["id"], study=row["study"], reader=row["reader"], time=row["time"],
                       model=row["model"], images=row["images"])
