"""The store's one migration mechanism: databases written by earlier releases open, keep
every record and gain the new tables; connections belong to their threads."""
from __future__ import annotations

import sqlite3
import threading

import pytest

from core.reading import schema
from core.reading.store import SCHEMA_VERSION, ResultStore, StoreError
from core.screening.results import AGREE, POSITIVE, ScreenResult

# The schema of release 0.3 as it stood on disk: versions 0-1 numbered, then three side
# tables created at every open outside the numbering (user_version 2).
OLD_SIDE_TABLES = """
CREATE TABLE IF NOT EXISTS decision_details (decision_id INTEGER PRIMARY KEY, reader TEXT NOT NULL DEFAULT '',
    size INTEGER, mtime_ns INTEGER);
CREATE TABLE IF NOT EXISTS study_signoffs (id INTEGER PRIMARY KEY AUTOINCREMENT, study TEXT NOT NULL,
    reader TEXT NOT NULL, time TEXT NOT NULL, model TEXT NOT NULL, images INTEGER NOT NULL,
    withdrawn INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS signoffs_by_study ON study_signoffs (study);
CREATE TABLE IF NOT EXISTS decision_reasons (decision_id INTEGER PRIMARY KEY, reason TEXT NOT NULL)
"""


def old_database(path, study, image, with_side_tables=True):
    conn = sqlite3.connect(path)
    for step in (0, 1):
        for statement in schema.statements(step):
            conn.execute(statement)
    if with_side_tables:
        for statement in OLD_SIDE_TABLES.split(";"):
            conn.execute(statement)
    stat = image.stat()
    # The old positional INSERT of 18 values.
    conn.execute("INSERT INTO results VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                 (str(study), str(image), "h", stat.st_size, stat.st_mtime_ns, "m", "1", 0.9, 0.5, None, "png",
                  "{}", None, None, None, "2026-01-01T00:00:00+00:00", "", 0.1))
    conn.execute("INSERT INTO decisions (study, path, decision, ai_call, reader_label, time, model, model_hash, "
                 "probability, threshold) VALUES (?,?,?,?,?,?,?,?,?,?)",
                 (str(study), str(image), AGREE, POSITIVE, POSITIVE, "2026-01-01T00:00:01+00:00", "m", "h", 0.9, 0.5))
    if with_side_tables:
        conn.execute("INSERT INTO decision_details VALUES (1, 'Dr Old', ?, ?)", (stat.st_size, stat.st_mtime_ns))
        conn.execute("INSERT INTO study_signoffs (study, reader, time, model, images) VALUES (?,?,?,?,?)",
                     (str(study), "Dr Old", "2026-01-01T00:00:02+00:00", "m v1", 1))
    conn.execute("PRAGMA user_version=2")
    conn.commit()
    conn.close()


@pytest.fixture
def study(tmp_path):
    folder = tmp_path / "study"
    folder.mkdir()
    image = folder / "a.png"
    image.write_bytes(b"png")
    return folder.resolve(), image.resolve()


@pytest.mark.parametrize("with_side_tables", [True, False], ids=["release-0.3", "release-0.2"])
def test_an_old_database_opens_keeps_its_records_and_gains_the_new_tables(tmp_path, study, with_side_tables):
    folder, image = study
    db = tmp_path / "old.sqlite3"
    old_database(db, folder, image, with_side_tables)
    with ResultStore(db) as store:
        assert store.get_result(image, "h").probability == pytest.approx(0.9)
        decision = store.image_decisions([image])[str(image)]
        assert decision.decision == AGREE and decision.reader == ("Dr Old" if with_side_tables else "")
        sign_off = store.study_sign_off(folder)
        assert (sign_off is not None) == with_side_tables
        if sign_off is not None:
            assert sign_off.reader == "Dr Old" and sign_off.threshold is None and sign_off.counts == {}
        # What the new schema adds works on the upgraded file.
        store.amend(folder, "Dr New", "late finding")
        assert store.study_sign_off(folder) is None
        store.sign_off(folder, "Dr New", "m v1", 1, threshold=0.4, counts={"decided": 1})
        signoffs, amendments = store.study_record(folder)
        assert signoffs[-1].threshold == pytest.approx(0.4) and signoffs[-1].counts == {"decided": 1}
        assert amendments[0].reason == "late finding" and amendments[0].reader == "Dr New"
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
    conn.close()


def test_results_are_written_by_column_name(tmp_path, study):
    folder, image = study
    with ResultStore(tmp_path / "s.sqlite3") as store:
        store.put_result(folder, ScreenResult(path=str(image), probability=0.25, threshold=0.5, model="m",
                                              model_version="2", model_hash="h", kind="png", scope="lateral view",
                                              scope_score=3.5))
        again = store.get_result(image, "h")
    assert (again.probability, again.scope, again.scope_score, again.model_version) == (0.25, "lateral view", 3.5, "2")


def test_close_closes_only_the_calling_threads_connection(tmp_path, study):
    folder, image = study
    store = ResultStore(tmp_path / "s.sqlite3")
    opened, closed, results = threading.Event(), threading.Event(), []

    def worker():
        store.image_decisions([image])  # opens this thread's connection
        conn = store._local.conn
        opened.set()
        closed.wait()
        conn.execute("SELECT 1")  # still this thread's own, open connection: close() did not touch it
        try:
            store.image_decisions([image])
        except StoreError as exc:  # ...but the store is closed for every thread
            results.append(str(exc))
        results.append(store._local.conn)  # and the thread closed its own connection at that use

    thread = threading.Thread(target=worker)
    thread.start()
    opened.wait()
    store.close()
    closed.set()
    thread.join()
    assert "closed" in results[0] and results[1] is None
    assert not hasattr(store, "_connections")  # no list of every thread's connection
