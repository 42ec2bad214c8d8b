"""A persistent outbox: result objects waiting to be sent, retried with backoff.

Each item is a DICOM file in DIR/outbox/ plus a row in DIR/outbox.sqlite3,
both written before `add` returns, so stopping the process (or the
destination being down for days) loses nothing: the next start sends what is
left. Items are unique per (key, destination), so screening an image again
after a crash does not send its results twice. Sent items keep their row
(history) and drop their file.

A destination that cannot be reached is retried for ever (with backoff); one that
answers and refuses an object is retried MAX_REFUSALS times, then the item is given up
(`gave_up`, with the refusal as `last_error`) and shown as refused in the Inbox until the
reader sends it again (`retry_study`). Each item records its study (StudyInstanceUID)
so the Inbox can say, per study, what was sent, what waits and what was refused.
"""
from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from core.files import write_atomically
from core.sqlite_busy import retry_while_busy
from core.pacs.nodes import Node, parse_node

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    key           TEXT    NOT NULL,
    destination   TEXT    NOT NULL,
    file          TEXT    NOT NULL,
    description   TEXT    NOT NULL,
    created       REAL    NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    next_attempt  REAL    NOT NULL,
    last_error    TEXT,
    sent          REAL,
    UNIQUE (key, destination)
);
CREATE INDEX IF NOT EXISTS items_due ON items (sent, next_attempt);
"""
# Columns added after the first release (an outbox from before gets them on open).
_ADDED_COLUMNS = {"refusals": "INTEGER NOT NULL DEFAULT 0", "gave_up": "REAL", "study": "TEXT NOT NULL DEFAULT ''"}
MAX_REFUSALS = 5
_BUSY_RETRY_S = 30.0  # opening waits this long for another opener's schema change


@dataclass
class StudyDelivery:
    """What became of one study's result objects: for the Inbox's "Sent" column."""
    sent: int = 0
    waiting: int = 0
    refused: int = 0  # given up after MAX_REFUSALS refusals
    refusing: int = 0  # waiting, but the destination refused it last time
    last_error: str = ""
    next_try_in: float | None = None  # seconds until the next waiting item is due

    @property
    def text(self) -> str:
        """'REFUSED 1: <why>; waiting 2, next try in 30 s: <why>; sent 2' (the parts that apply)."""
        parts = []
        if self.refused:
            parts.append(f"REFUSED {self.refused}: {self.last_error}")
        if self.waiting:
            when = "" if self.next_try_in is None else f", next try in {self.next_try_in:.0f} s"
            why = f": {self.last_error}" if self.last_error and not self.refused else ""
            parts.append(f"waiting {self.waiting}{when}{why}")
        if self.sent:
            parts.append(f"sent {self.sent}")
        return "; ".join(parts)


@dataclass
class OutboxItem:
    id: int
    key: str
    destination: Node
    file: Path
    description: str
    attempts: int
    last_error: str | None


class Outbox:
    """Thread-safe (one lock, one connection); SQLite WAL, every change committed at once."""

    def __init__(self, directory, base_delay: float = 5.0, max_delay: float = 600.0):
        self.directory = Path(directory)
        self.files_dir = self.directory / "outbox"
        self.files_dir.mkdir(parents=True, exist_ok=True)
        self.base_delay, self.max_delay = float(base_delay), float(max_delay)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(self.directory / "outbox.sqlite3"), timeout=10.0, check_same_thread=False)
        retry_while_busy(lambda: self._conn.execute("PRAGMA journal_mode=WAL"), _BUSY_RETRY_S)
        self._conn.execute("PRAGMA synchronous=FULL")  # a result must survive a power cut once queued
        with self._lock:
            self._upgrade_schema()
        self.changed = threading.Event()  # set when an item is added: wakes the delivery worker

    def _upgrade_schema(self) -> None:
        """Create or upgrade the table under SQLite's write lock (BEGIN IMMEDIATE).

        The Inbox's reader and the delivery worker may open one outbox at the same
        moment; without the lock both see a column missing and both add it.
        """
        conn = self._conn
        retry_while_busy(lambda: conn.execute("BEGIN IMMEDIATE"), _BUSY_RETRY_S)
        with conn:  # commits, or rolls back on any error
            for statement in filter(str.strip, _SCHEMA.split(";")):
                conn.execute(statement)
            present = {row[1] for row in conn.execute("PRAGMA table_info(items)")}
            for column, kind in _ADDED_COLUMNS.items():
                if column not in present:
                    conn.execute(f"ALTER TABLE items ADD COLUMN {column} {kind}")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def add(self, destination: Node, dataset, key: str, description: str = "") -> bool:
        """Queue a data set for a node; False when this key already went (or waits) there."""
        target = self.files_dir / f"{uuid.uuid4().hex}.dcm"
        write_atomically(target, lambda out: dataset.save_as(out, enforce_file_format=True), ".queued-")
        study = str(getattr(dataset, "StudyInstanceUID", "") or "")
        with self._lock, self._conn:
            cursor = self._conn.execute(
                "INSERT OR IGNORE INTO items (key, destination, file, description, created, next_attempt, study) "
                "VALUES (?,?,?,?,?,?,?)",
                (key, str(destination), target.name, description, time.time(), 0.0, study))
        if cursor.rowcount == 0:
            target.unlink(missing_ok=True)
            return False
        self.changed.set()
        return True

    def _items(self, where: str, parameters: tuple = ()) -> list[OutboxItem]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT id, key, destination, file, description, attempts, last_error FROM items "
                f"WHERE {where}", parameters).fetchall()
        return [self._item(row) for row in rows]

    def due(self, now: float | None = None, limit: int = 100) -> list[OutboxItem]:
        now = time.time() if now is None else now
        return self._items("sent IS NULL AND gave_up IS NULL AND next_attempt <= ? ORDER BY next_attempt, id LIMIT ?",
                           (now, limit))

    def pending(self) -> list[OutboxItem]:
        return self._items("sent IS NULL AND gave_up IS NULL ORDER BY id")

    def pending_count(self) -> int:
        """Items still to be sent (those given up after refusals are not pending)."""
        with self._lock:
            return self._conn.execute(
                "SELECT COUNT(*) FROM items WHERE sent IS NULL AND gave_up IS NULL").fetchone()[0]

    def refused(self) -> list[OutboxItem]:
        """Items given up after MAX_REFUSALS refusals (last_error says why)."""
        return self._items("sent IS NULL AND gave_up IS NOT NULL ORDER BY id")

    def sent_count(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT COUNT(*) FROM items WHERE sent IS NOT NULL").fetchone()[0]

    def next_due_in(self) -> float | None:
        """Seconds until the next pending item is due (0 if overdue), None when nothing waits."""
        with self._lock:
            row = self._conn.execute(
                "SELECT MIN(next_attempt) FROM items WHERE sent IS NULL AND gave_up IS NULL").fetchone()
        return None if row[0] is None else max(0.0, row[0] - time.time())

    def mark_sent(self, item: OutboxItem) -> None:
        with self._lock, self._conn:
            self._conn.execute("UPDATE items SET sent=?, last_error=NULL WHERE id=?", (time.time(), item.id))
        item.file.unlink(missing_ok=True)

    def mark_failed(self, item: OutboxItem, error: str, refused: bool = False) -> float:
        """Record a failed try; returns the delay before the next (doubling up to max_delay).

        `refused`: the destination answered and refused this object (not a network failure);
        after MAX_REFUSALS of those the item is given up (returns inf)."""
        delay = min(self.max_delay, self.base_delay * 2 ** item.attempts)
        with self._lock, self._conn:
            self._conn.execute(
                "UPDATE items SET attempts=attempts+1, refusals=refusals+?, next_attempt=?, last_error=? "
                "WHERE id=?", (int(refused), time.time() + delay, str(error)[:500], item.id))
            if refused:
                gave_up = self._conn.execute(
                    "UPDATE items SET gave_up=? WHERE id=? AND refusals>=?",
                    (time.time(), item.id, MAX_REFUSALS)).rowcount
                if gave_up:
                    return float("inf")
        return delay

    def retry_all_now(self) -> None:
        """Make every pending item due (a restart, or a user's "send now")."""
        with self._lock, self._conn:
            self._conn.execute("UPDATE items SET next_attempt=0 WHERE sent IS NULL AND gave_up IS NULL")
        self.changed.set()

    def retry_study(self, study_uid: str) -> int:
        """The reader sends a study's results again: its refused and waiting items are due now."""
        with self._lock, self._conn:
            count = self._conn.execute(
                "UPDATE items SET gave_up=NULL, refusals=0, next_attempt=0 WHERE sent IS NULL AND study=?",
                (study_uid,)).rowcount
        self.changed.set()
        return count

    def study_deliveries(self, destination: Node | None = None) -> dict[str, StudyDelivery]:
        """Per StudyInstanceUID: how many result objects were sent, wait, or were refused
        (to any destination, or to `destination` only)."""
        now, states = time.time(), {}
        query = "SELECT study, sent, gave_up, next_attempt, last_error, refusals FROM items WHERE study != ''"
        args: tuple = ()
        if destination is not None:
            query, args = query + " AND destination = ?", (str(destination),)
        with self._lock:
            rows = self._conn.execute(query + " ORDER BY id", args).fetchall()
        for study, sent, gave_up, next_attempt, error, refusals in rows:
            state = states.setdefault(study, StudyDelivery())
            if sent is not None:
                state.sent += 1
                continue
            if gave_up is not None:
                state.refused += 1
            else:
                state.waiting += 1
                state.refusing += bool(refusals)
                due_in = max(0.0, next_attempt - now)
                state.next_try_in = due_in if state.next_try_in is None else min(state.next_try_in, due_in)
            state.last_error = error or state.last_error
        return states

    def _item(self, row) -> OutboxItem:
        return OutboxItem(id=row[0], key=row[1], destination=parse_node(row[2]), file=self.files_dir / row[3],
                          description=row[4], attempts=row[5], last_error=row[6])


