"""Waiting out SQLite's "database is locked": one rule for every store that shares a file.

SQLite's own busy timeout does not cover everything: changing the journal mode or
starting a write transaction while another connection does the same can fail at once
with SQLITE_BUSY. Such an operation is retried with backoff for a bounded time;
any other error is raised at once.
"""
from __future__ import annotations

import sqlite3
import time
from typing import Callable, TypeVar

T = TypeVar("T")


def is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def retry_while_busy(operation: Callable[[], T], seconds: float) -> T:
    """Run `operation` (one query or transaction) again while the database is busy, up to
    `seconds` in all; then, or on any other error, its exception is raised."""
    deadline = time.monotonic() + seconds
    delay = 0.05
    while True:
        try:
            return operation()
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 1.0)
