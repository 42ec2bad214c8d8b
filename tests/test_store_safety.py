"""Store safety: a busy database is waited for, and decisions survive a kill."""
from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from core.reading import store as store_module
from core.screening.results import AGREE
from core.reading.store import ResultStore, StoreError

REPO = Path(__file__).resolve().parents[1]


def decide(store, study, n):
    return store.record_decision(study, study / f"img{n}.png", AGREE, ai_call="NORMAL", model="m v1",
                              model_hash="h", probability=0.1, threshold=0.5)


def hold_write_lock(db: Path, seconds: float, ready: threading.Event) -> None:
    conn = sqlite3.connect(str(db), timeout=0)
    conn.execute("BEGIN EXCLUSIVE")
    ready.set()
    time.sleep(seconds)
    conn.rollback()
    conn.close()


def test_busy_database_is_retried_not_fatal(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_S", 0.05)  # make SQLite give up fast
    db = tmp_path / "results.sqlite3"
    with ResultStore(db) as store:
        ready = threading.Event()
        locker = threading.Thread(target=hold_write_lock, args=(db, 1.0, ready))
        locker.start()
        ready.wait()
        started = time.monotonic()
        record = decide(store, tmp_path, 1)  # waits for the lock instead of failing
        locker.join()
        assert time.monotonic() - started >= 0.5
        assert [d.id for d in store.image_history(tmp_path / "img1.png")] == [record.id]


def test_a_database_that_stays_busy_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_S", 0.05)
    monkeypatch.setattr(store_module, "BUSY_RETRY_S", 0.3)
    db = tmp_path / "results.sqlite3"
    with ResultStore(db) as store:
        ready = threading.Event()
        locker = threading.Thread(target=hold_write_lock, args=(db, 1.5, ready))
        locker.start()
        ready.wait()
        with pytest.raises(StoreError, match="unavailable"):
            decide(store, tmp_path, 1)
        locker.join()
        decide(store, tmp_path, 2)  # usable again once the lock is gone


WRITER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from core.reading.store import ResultStore
    from core.screening.results import AGREE
    study = Path(sys.argv[2])
    store = ResultStore(sys.argv[1])
    n = 0
    while True:
        d = store.record_decision(study, study / f"img{n % 50}.png", AGREE, ai_call="NORMAL",
                               model="m v1", model_hash="h" * 64, probability=0.25, threshold=0.5)
        print(d.id, flush=True)  # only after the commit returned
        n += 1
""")


def test_decisions_survive_a_kill_mid_write(tmp_path):
    db = tmp_path / "results.sqlite3"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(db), str(tmp_path)],
                              stdout=subprocess.PIPE, text=True, env=env)
    committed = []
    try:
        for line in writer.stdout:
            committed.append(int(line))
            if len(committed) >= 200:
                break
    finally:
        writer.send_signal(signal.SIGKILL)  # mid-loop: it is writing the next one
        writer.wait(timeout=30)
    assert len(committed) >= 200
    with sqlite3.connect(str(db)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with ResultStore(db) as store:
        stored = {d.id for n in range(50) for d in store.image_history(tmp_path / f"img{n}.png")}
    assert set(committed) <= stored
