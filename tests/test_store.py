"""Results store: round trip, cache invalidation, decisions, persistence."""
from __future__ import annotations

import os
import sqlite3
import threading

import numpy as np
import pytest

from core.screening.results import AGREE, DISAGREE, NEGATIVE, POSITIVE, UNSURE, ScreenResult
from core.reading.store import SCHEMA_VERSION, ResultStore, StoreError

HASH_A = "a" * 64
HASH_B = "b" * 64


@pytest.fixture
def study(tmp_path):
    folder = tmp_path / "study"
    folder.mkdir()
    for name in ("one.png", "two.png"):
        (folder / name).write_bytes(b"not really a png")
    return folder


@pytest.fixture
def store(tmp_path):
    with ResultStore(tmp_path / "store.sqlite3") as s:
        yield s


def make_result(path, model_hash=HASH_A, probability=0.8, **extra) -> ScreenResult:
    fields = dict(path=str(path), probability=probability, threshold=0.5, model="tiny",
                  model_version="3", model_hash=model_hash, kind="png",
                  meta={"PatientSex": "F", "Rows": 100}, image_shape=(100, 120),
                  cam=np.linspace(0, 1, 49, dtype=np.float32).reshape(7, 7))
    fields.update(extra)
    return ScreenResult(**fields)


def test_round_trip_keeps_every_field(store, study):
    original = make_result(study / "one.png")
    store.put_result(study, original)
    loaded = store.get_result(study / "one.png", HASH_A)
    assert loaded is not None
    assert loaded.path == str((study / "one.png").resolve())
    assert loaded.probability == pytest.approx(0.8)
    assert (loaded.threshold, loaded.model, loaded.model_version, loaded.model_hash) == (0.5, "tiny", "3", HASH_A)
    assert (loaded.kind, loaded.meta, loaded.image_shape, loaded.error) == ("png", original.meta, (100, 120), None)
    assert loaded.cam.dtype == np.float32 and loaded.cam.shape == (7, 7)
    np.testing.assert_allclose(loaded.cam, original.cam, atol=1e-3)  # stored as float16
    assert loaded.prediction == POSITIVE


def test_error_results_round_trip(store, study):
    store.put_result(study, make_result(study / "two.png", probability=None, error="not an image file", cam=None))
    loaded = store.get_result(study / "two.png", HASH_A)
    assert loaded.error == "not an image file" and loaded.probability is None and loaded.cam is None
    assert not loaded.ok and loaded.prediction is None


def test_changed_mtime_or_size_invalidates(store, study):
    path = study / "one.png"
    store.put_result(study, make_result(path))
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert store.get_result(path, HASH_A) is None
    store.put_result(study, make_result(path))  # re-screened: valid again
    assert store.get_result(path, HASH_A) is not None
    mtime = path.stat().st_mtime_ns
    path.write_bytes(b"a different length")
    os.utime(path, ns=(mtime, mtime))  # same mtime, new size
    assert store.get_result(path, HASH_A) is None
    assert store.study_results(study, HASH_A) == []


def test_other_model_hash_is_a_miss(store, study):
    store.put_result(study, make_result(study / "one.png"))
    assert store.get_result(study / "one.png", HASH_B) is None
    store.put_result(study, make_result(study / "one.png", model_hash=HASH_B, probability=0.1))
    assert store.get_result(study / "one.png", HASH_A).probability == pytest.approx(0.8)
    assert store.get_result(study / "one.png", HASH_B).probability == pytest.approx(0.1)


def test_deleted_file_is_a_miss(store, study):
    store.put_result(study, make_result(study / "one.png"))
    (study / "one.png").unlink()
    assert store.get_result(study / "one.png", HASH_A) is None


def test_study_results_are_per_study_and_model(store, study, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "x.png").write_bytes(b"x")
    store.put_result(study, make_result(study / "two.png"))
    store.put_result(study, make_result(study / "one.png"))
    store.put_result(study, make_result(study / "one.png", model_hash=HASH_B))
    store.put_result(other, make_result(other / "x.png"))
    paths = [r.path for r in store.study_results(study, HASH_A)]
    assert paths == sorted(str((study / n).resolve()) for n in ("one.png", "two.png"))
    assert len(store.study_results(study, HASH_B)) == 1
    assert len(store.study_results(other, HASH_A)) == 1


def test_decisions_undo_and_latest(store, study):
    one, two = study / "one.png", study / "two.png"
    common = dict(model="tiny", model_hash=HASH_A, threshold=0.5)
    first = store.record_decision(study, one, AGREE, ai_call=POSITIVE, probability=0.9, **common)
    assert first.reader_label == POSITIVE and first.time.endswith("+00:00") and not first.undone
    second = store.record_decision(study, one, DISAGREE, ai_call=POSITIVE, probability=0.9, **common)
    assert second.reader_label == NEGATIVE and second.id > first.id
    store.record_decision(study, two, UNSURE, ai_call=NEGATIVE, probability=0.2, **common)

    latest = store.image_decisions([one, two])
    assert latest[str(one.resolve())].id == second.id
    assert latest[str(two.resolve())].reader_label is None

    store.undo_decision(second.id)
    store.undo_decision(second.id)  # twice is harmless
    assert store.image_decisions([one, two])[str(one.resolve())].id == first.id
    history = store.image_history(one)
    assert [(d.id, d.undone) for d in history] == [(first.id, False), (second.id, True)]
    assert history[1].probability == pytest.approx(0.9) and history[1].model_hash == HASH_A

    store.undo_decision(first.id)
    assert str(one.resolve()) not in store.image_decisions([one, two])
    assert len(store.image_history(one)) == 2  # history is never deleted


def test_bad_decision_and_unknown_undo(store, study):
    with pytest.raises(ValueError):
        store.record_decision(study, study / "one.png", "maybe", ai_call=POSITIVE, model="m",
                           model_hash=HASH_A, probability=0.9, threshold=0.5)
    with pytest.raises(KeyError):
        store.undo_decision(12345)


def test_persists_across_reopen(tmp_path, study):
    db = tmp_path / "store.sqlite3"
    with ResultStore(db) as first:
        first.put_result(study, make_result(study / "one.png"))
        decision = first.record_decision(study, study / "one.png", AGREE, ai_call=POSITIVE, model="tiny",
                                      model_hash=HASH_A, probability=0.8, threshold=0.5)
    with ResultStore(db) as again:
        assert again.get_result(study / "one.png", HASH_A).probability == pytest.approx(0.8)
        assert again.image_decisions([study / "one.png"])[str((study / "one.png").resolve())].id == decision.id


def test_schema_version_and_wal(tmp_path):
    db = tmp_path / "store.sqlite3"
    ResultStore(db).close()
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer"):
        ResultStore(db)


def test_default_location_is_user_data_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("PNEUMOSCAN_HOME", str(tmp_path / "home"))
    with ResultStore() as s:
        assert s.db_path == tmp_path / "home" / "results.sqlite3"
    assert (tmp_path / "home" / "results.sqlite3").exists()


def test_writer_thread_and_reader_thread(store, tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    files = []
    for i in range(40):
        files.append(folder / f"{i:02d}.png")
        files[-1].write_bytes(b"x" * (i + 1))
    errors = []

    def writer():
        try:
            for path in files:
                store.put_result(folder, make_result(path))
        except Exception as exc:  # surfaced below
            errors.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    while thread.is_alive():
        assert len(store.study_results(folder, HASH_A)) <= 40  # reads never fail mid-write
    thread.join()
    assert not errors
    assert len(store.study_results(folder, HASH_A)) == 40


def test_killed_screening_run_loses_no_reported_result(tmp_path):
    """SIGKILL a `pneumoscan-cli screen` subprocess mid-run: every row it printed is in the store."""
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from engine_models import save_tiny_model, write_images

    home = tmp_path / "home"
    folder = tmp_path / "study"
    write_images(folder, 400, size=40)
    entry = save_tiny_model(tmp_path / "models")
    env = dict(os.environ, PNEUMOSCAN_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="3")
    repo = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen(
        [sys.executable, "-m", "core.cli", "screen", str(folder), "--model", str(entry.keras_path),
         "--batch-size", "1"],
        cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout.readline().startswith("path,probability")
        reported = [proc.stdout.readline() for _ in range(3)]
        os.kill(proc.pid, signal.SIGKILL)
        reported += proc.stdout.readlines()  # rows already in the pipe were reported too
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    rows = [line.rstrip("\n").split(",") for line in reported if line.strip()]
    assert 3 <= len(rows) < 400, "the run was not interrupted mid-way"
    with ResultStore(home / "results.sqlite3") as store:
        for path, probability, *_ in rows:
            stored = store.get_result(path, entry.card.sha256)
            assert stored is not None, f"{path} was reported but not stored"
            assert f"{stored.probability:.6f}" == probability
        assert len(store.study_results(folder, entry.card.sha256)) < 400
