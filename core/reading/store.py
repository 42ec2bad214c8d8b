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

Schema: numbered migrations only (core.reading.schema); a database written by any
earlier release is upgraded when it is opened.

Thread safety: one SQLite connection per thread (`threading.local`), so a
worker thread can write results while the GUI thread reads; WAL lets readers
and the writer run at once. A connection belongs to its thread alone: `close()`
closes the calling thread's connection and closes the store to every thread (each
closes its own at its next use, or when the thread ends); no list of every thread's
connection is kept. Paths (files and study folders) are stored resolved.
"""
from __future__ import annotations

import json
import os
import sqlite3
import threading
from pathlib import Path

import numpy as np

from core import paths
from core.reading.records import (RECORDED_KINDS, ROW_DECISIONS, Amendment, Decision,
                                  SignOff, utc_now as _utc_now)
from core.reading.schema import SCHEMA_VERSION, statements
from core.screening.results import SCREEN_ANYWAY, ScreenResult, reader_label
from core.sqlite_busy import retry_while_busy
from core.version import software_version

__all__ = ["SCHEMA_VERSION", "Amendment", "Decision", "ResultStore", "SignOff", "StoreError"]

_MISSING = (-1, -1)  # (size, mtime_ns) of a file that cannot be stat'ed


BUSY_TIMEOUT_S = 5.0  # SQLite's own wait for a lock, per statement
BUSY_RETRY_S = 60.0  # then whole operations are retried this long


class StoreError(Exception):
    """The results store cannot be opened or used (readable message)."""


_SQL_CHUNK = 500  # paths per IN (...) query (SQLite's variable limit is 999 on old builds)


def _resolved(path) -> str:
    return str(Path(path).expanduser().resolve())


def _file_signature(path: str) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except OSError:
        return _MISSING
    return st.st_size, st.st_mtime_ns


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
        self._local = threading.local()  # .conn: this thread's connection
        self._lock = threading.Lock()  # one migration at a time within this process
        self._closed = False
        self._migrate(self._conn())

    # -- connections ---------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        """This thread's connection (opened on first use; dropped with the thread)."""
        conn = getattr(self._local, "conn", None)
        if self._closed:
            if conn is not None:  # the store was closed from another thread: close ours too
                conn.close()
                self._local.conn = None
            raise StoreError("the results store is closed")
        if conn is None:
            try:
                conn = sqlite3.connect(str(self.db_path), timeout=BUSY_TIMEOUT_S)
                self._retrying(lambda: conn.execute("PRAGMA journal_mode=WAL"))
                conn.execute("PRAGMA synchronous=FULL")
            except sqlite3.Error as exc:
                raise StoreError(f"cannot open results store {self.db_path}: {exc}") from None
            conn.row_factory = sqlite3.Row
            self._local.conn = conn
        return conn

    def _retrying(self, operation):
        """Run `operation` (one transaction or query), retrying while the
        database is busy; any other database error becomes a StoreError."""
        try:
            return retry_while_busy(operation, BUSY_RETRY_S)
        except sqlite3.OperationalError as exc:
            raise StoreError(f"results store {self.db_path} is unavailable: {exc}") from None

    def _write(self, sql: str, params=()) -> sqlite3.Cursor:
        """One statement in its own committed transaction (busy: retried)."""
        def attempt():
            conn = self._conn()
            with conn:  # commits, or rolls back on error
                return conn.execute(sql, params)
        return self._retrying(attempt)

    @staticmethod
    def _insert(conn: sqlite3.Connection, table: str, values: dict, replace: bool = False) -> int:
        """INSERT by column name (never by position): a new column cannot shift the others."""
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        columns, marks = ", ".join(values), ", ".join("?" * len(values))
        return conn.execute(f"{verb} INTO {table} ({columns}) VALUES ({marks})", tuple(values.values())).lastrowid

    def _read(self, sql: str, params=()) -> list[sqlite3.Row]:
        return self._retrying(lambda: self._conn().execute(sql, params).fetchall())

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Every numbered step from the database's version up, in one transaction.
        BEGIN IMMEDIATE takes the write lock first, so two processes opening an old
        store at once cannot both upgrade it."""
        with self._lock:
            self._retrying(lambda: conn.execute("BEGIN IMMEDIATE"))
            try:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise StoreError(f"results store {self.db_path} was written by a newer PneumoScan "
                                     f"(schema {version}, this version reads up to {SCHEMA_VERSION})")
                for step in range(version, SCHEMA_VERSION):
                    for statement in statements(step):
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                conn.commit()
            except BaseException:
                conn.rollback()
                raise

    def close(self) -> None:
        """Close the store: this thread's connection now, every other thread's at its next use."""
        self._closed = True
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

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
        values = {
            "study": _resolved(study_folder), "path": path, "model_hash": result.model_hash,
            "size": size, "mtime_ns": mtime_ns, "model": result.model, "model_version": str(result.model_version),
            "probability": None if result.probability is None else float(result.probability),
            "threshold": float(result.threshold), "error": result.error, "kind": result.kind,
            "meta": json.dumps(result.meta or {}, default=str),
            "image_shape": None if result.image_shape is None else json.dumps([int(v) for v in result.image_shape]),
            "cam": cam, "cam_shape": cam_shape, "stored_at": _utc_now(),
            "scope": result.scope or "",
            "scope_score": None if result.scope_score is None else float(result.scope_score),
            "software_version": result.software_version or None,
            "film_preparation": result.film_preparation,
        }

        def attempt():
            conn = self._conn()
            with conn:
                self._insert(conn, "results", values, replace=True)
        self._retrying(attempt)

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
            software_version=row["software_version"] or "", film_preparation=row["film_preparation"],
        )

    # -- reader decisions ----------------------------------------------------

    def record_decision(self, study_folder, path, decision: str, *, ai_call: str | None, model: str,
                        model_hash: str, probability: float | None, threshold: float,
                        reader: str = "", reason: str = "") -> Decision:
        """A reader decision with the AI's state at that moment, who decided and the file's
        identity, in one transaction (busy: retried). `reason`: the scope reason of a
        SCREEN_ANYWAY or CONFIRM_OUT_OF_SCOPE. Decisions are append-only."""
        if decision not in RECORDED_KINDS:
            raise ValueError(f"unknown decision {decision!r} (expected one of {', '.join(RECORDED_KINDS)})")
        record = _new_decision(study_folder, path, decision, ai_call, model, model_hash, probability, threshold,
                               reader=str(reader or ""), reason=str(reason or ""))
        size, mtime_ns = _file_signature(record.path)

        def attempt():
            conn = self._conn()
            with conn:  # every row or none
                decision_id = self._insert(conn, "decisions", {
                    "study": record.study, "path": record.path, "decision": record.decision,
                    "ai_call": record.ai_call, "reader_label": record.reader_label, "time": record.time,
                    "model": record.model, "model_hash": record.model_hash, "probability": record.probability,
                    "threshold": record.threshold})
                self._insert(conn, "decision_details", {
                    "decision_id": decision_id, "reader": record.reader,
                    "size": None if size < 0 else size, "mtime_ns": None if size < 0 else mtime_ns})
                if record.reason:
                    self._insert(conn, "decision_reasons", {"decision_id": decision_id, "reason": record.reason})
                return decision_id

        record.id = self._retrying(attempt)
        return record

    def undo_decision(self, decision_id: int) -> None:
        """Mark a decision undone (kept in the history). Undoing twice is a no-op."""
        cursor = self._write(
            "UPDATE decisions SET undone=1, undone_time=COALESCE(undone_time, ?) WHERE id=?",
            (_utc_now(), int(decision_id)))
        if cursor.rowcount == 0:
            raise KeyError(f"no decision with id {decision_id}")

    _DETAILED = ("SELECT d.*, COALESCE(x.reader, '') AS reader, x.size AS file_size, "
                 "x.mtime_ns AS file_mtime_ns, COALESCE(r.reason, '') AS reason FROM decisions d "
                 "LEFT JOIN decision_details x ON x.decision_id = d.id "
                 "LEFT JOIN decision_reasons r ON r.decision_id = d.id ")

    def image_decisions(self, paths, kinds=ROW_DECISIONS) -> dict[str, Decision]:
        """path -> the newest decision of `kinds` not undone, made in any study folder, on this
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
                latest[row["path"]] = self._to_decision(row)  # later rows win
        return latest

    def image_overrides(self, paths) -> dict[str, Decision]:
        """path -> the newest SCREEN_ANYWAY not undone (as image_decisions): the reader asked
        for the AI call on this out-of-scope image."""
        return self.image_decisions(paths, kinds=(SCREEN_ANYWAY,))

    def image_history(self, path) -> list[Decision]:
        """Every decision on a file, from any study folder, oldest first, with readers."""
        rows = self._read(self._DETAILED + "WHERE d.path=? ORDER BY d.id", (_resolved(path),))
        return [self._to_decision(row) for row in rows]

    def study_decision_paths(self, study_folder) -> list[str]:
        """Every file with a decision recorded in this study folder."""
        rows = self._read("SELECT DISTINCT path FROM decisions WHERE study=? ORDER BY path",
                          (_resolved(study_folder),))
        return [row["path"] for row in rows]

    def scope_at_decision(self, decisions) -> dict[int, str]:
        """decision id -> the scope reason of the result it was made on ("" = in scope or
        unknown): the stored result of the same file and model."""
        out: dict[int, str] = {}
        for decision in decisions:
            rows = self._read("SELECT scope FROM results WHERE path=? AND model_hash=? "
                              "ORDER BY stored_at DESC LIMIT 1", (decision.path, decision.model_hash))
            out[decision.id] = (rows[0]["scope"] or "") if rows else ""
        return out

    @staticmethod
    def _to_decision(row: sqlite3.Row) -> Decision:
        keys = row.keys()
        return Decision(
            id=row["id"], study=row["study"], path=row["path"], decision=row["decision"],
            ai_call=row["ai_call"], reader_label=row["reader_label"], time=row["time"],
            model=row["model"], model_hash=row["model_hash"], probability=row["probability"],
            threshold=row["threshold"], undone=bool(row["undone"]),
            reader=(row["reader"] if "reader" in keys else "") or "",
            reason=(row["reason"] if "reason" in keys else "") or "")

    # -- sign-off and amendments -------------------------------------------------

    def sign_off(self, study_folder, reader: str, model: str, images: int, threshold: float | None = None,
                 counts: dict | None = None) -> SignOff:
        """Record that `reader` signed the study off, with the model, threshold and counts
        it was signed with (earlier sign-offs stay in the history)."""
        record = SignOff(id=0, study=_resolved(study_folder), reader=str(reader or ""), time=_utc_now(),
                         model=str(model), images=int(images),
                         threshold=None if threshold is None else float(threshold), counts=dict(counts or {}),
                         software_version=software_version())

        def attempt():
            conn = self._conn()
            with conn:
                return self._insert(conn, "study_signoffs", {
                    "study": record.study, "reader": record.reader, "time": record.time, "model": record.model,
                    "images": record.images, "threshold": record.threshold,
                    "counts": json.dumps(record.counts, sort_keys=True),
                    "software_version": record.software_version})
        record.id = self._retrying(attempt)
        return record

    def amend(self, study_folder, reader: str, reason: str) -> Amendment:
        """Re-open a signed-off study for changes: recorded (who, when, why); the sign-off
        stays in the history, marked withdrawn."""
        if not str(reason or "").strip():
            raise ValueError("an amendment needs a reason")
        study = _resolved(study_folder)
        current = self.study_sign_off(study)
        record = Amendment(id=0, study=study, signoff_id=current.id if current else None,
                           reader=str(reader or ""), time=_utc_now(), reason=str(reason).strip())

        def attempt():
            conn = self._conn()
            with conn:  # the amendment and the withdrawal together
                conn.execute("UPDATE study_signoffs SET withdrawn=1 WHERE study=?", (study,))
                return self._insert(conn, "study_amendments", {
                    "study": record.study, "signoff_id": record.signoff_id, "reader": record.reader,
                    "time": record.time, "reason": record.reason})
        record.id = self._retrying(attempt)
        return record

    def study_sign_off(self, study_folder) -> SignOff | None:
        """The study's current sign-off, or None while it is open."""
        rows = self._read("SELECT * FROM study_signoffs WHERE study=? AND withdrawn=0 ORDER BY id DESC LIMIT 1",
                          (_resolved(study_folder),))
        return self._to_sign_off(rows[0]) if rows else None

    def study_record(self, study_folder) -> tuple[list[SignOff], list[Amendment]]:
        """Every sign-off and amendment of a study, oldest first (the report prints them)."""
        study = _resolved(study_folder)
        signoffs = [self._to_sign_off(row) for row in self._read(
            "SELECT * FROM study_signoffs WHERE study=? ORDER BY id", (study,))]
        amendments = [Amendment(id=row["id"], study=row["study"], signoff_id=row["signoff_id"],
                                reader=row["reader"], time=row["time"], reason=row["reason"])
                      for row in self._read("SELECT * FROM study_amendments WHERE study=? ORDER BY id", (study,))]
        return signoffs, amendments

    @staticmethod
    def _to_sign_off(row: sqlite3.Row) -> SignOff:
        counts = json.loads(row["counts"]) if row["counts"] else {}
        return SignOff(id=row["id"], study=row["study"], reader=row["reader"], time=row["time"],
                       model=row["model"], images=row["images"], threshold=row["threshold"], counts=counts,
                       software_version=row["software_version"] or "")
