"""Each stored result says which PneumoScan made it and how the film was prepared
(0.4.1 began trimming blank borders before the model, so the same model can give another
probability for the same file). Results stored before this was recorded are kept as they
were, never silently replaced, and said to be earlier everywhere they are shown."""
from __future__ import annotations

import csv
import sqlite3
import tomllib
from pathlib import Path

import numpy as np
import pytest

from core import cli
from core.imaging.preprocessing import FILM_PREPARATION, FILM_PREPARATIONS
from core.reading import schema
from core.reading.report import report_rows, screened_with, summary_of, totals, write_csv
from core.reading.report_pdf import summary_lines
from core.reading.session import ReadingSession
from core.reading.store import SCHEMA_VERSION, ResultStore
from core.reading.study_screening import SCREENED, STORED, screen_study
from core.screening.results import NOT_RECORDED, ScreenResult, earlier_preparation_note
from core.version import software_version
from engine_models import loaded_tiny, save_tiny_model, tiny_cnn, write_images

REPO = Path(__file__).resolve().parents[1]
PYPROJECT_VERSION = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]


@pytest.fixture(scope="module")
def model():
    return loaded_tiny(tiny_cnn(32))


@pytest.fixture
def study(tmp_path):
    folder = tmp_path / "study"
    write_images(folder, 3, seed=4)
    return folder.resolve()


def forget_provenance(db_path) -> None:
    """What a database upgraded from schema 3 holds: results without their provenance."""
    conn = sqlite3.connect(db_path)
    conn.execute("UPDATE results SET software_version = NULL, film_preparation = NULL")
    conn.commit()
    conn.close()


def test_the_software_version_is_pyprojects():
    assert software_version() == PYPROJECT_VERSION
    assert FILM_PREPARATION in FILM_PREPARATIONS


def test_a_screened_result_records_its_provenance_and_the_store_keeps_it(tmp_path, study, model):
    with ResultStore(tmp_path / "s.sqlite3") as store:
        fresh = [item.result for item in screen_study(study, model, store, gradcam=False)]
        assert all(r.software_version == PYPROJECT_VERSION and r.film_preparation == FILM_PREPARATION
                   for r in fresh)
        assert not any(r.earlier_preparation for r in fresh)
        stored = store.get_result(fresh[0].path, model.sha256)
        assert (stored.software_version, stored.film_preparation) == (PYPROJECT_VERSION, FILM_PREPARATION)
        assert stored.provenance == f"PneumoScan {PYPROJECT_VERSION}, {FILM_PREPARATIONS[FILM_PREPARATION]}"


def test_a_schema_3_database_gains_the_columns_and_its_results_stay_as_they_were(tmp_path, study):
    db = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(db)
    for step in range(3):
        for statement in schema.statements(step):
            conn.execute(statement)
    image = sorted(study.glob("*.png"))[0]
    stat = image.stat()
    conn.execute("INSERT INTO results (study, path, model_hash, size, mtime_ns, model, model_version, probability, "
                 "threshold, kind, meta, stored_at, scope) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                 (str(study), str(image), "h", stat.st_size, stat.st_mtime_ns, "m", "2", 0.75, 0.5, "png", "{}",
                  "2026-12-01T00:00:00+00:00", ""))
    conn.execute("PRAGMA user_version=3")
    conn.commit()
    conn.close()
    with ResultStore(db) as store:
        old = store.get_result(image, "h")
    assert sqlite3.connect(db).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
    assert old.probability == pytest.approx(0.75)  # still reused: what a reader signed stays
    assert (old.software_version, old.film_preparation) == ("", None)
    assert old.earlier_preparation and old.provenance == NOT_RECORDED


def test_an_earlier_result_is_reused_unchanged_until_the_reader_asks_for_a_new_one(tmp_path, study, model):
    db = tmp_path / "s.sqlite3"
    with ResultStore(db) as store:
        first = {i.result.path: i.result.probability for i in screen_study(study, model, store, gradcam=False)}
    forget_provenance(db)
    with ResultStore(db) as store:
        again = list(screen_study(study, model, store, gradcam=False))
        assert [i.kind for i in again] == [STORED] * 3
        assert all(i.result.earlier_preparation and i.result.probability == first[i.result.path] for i in again)
        renewed = list(screen_study(study, model, store, gradcam=False, rescreen=True))
        assert [i.kind for i in renewed] == [SCREENED] * 3
        assert not any(store.get_result(p, model.sha256).earlier_preparation for p in first)


def test_the_cli_says_when_stored_results_are_earlier(home, study, capsys):
    model_file = save_tiny_model(home.parent / "models").keras_path
    out = home.parent / "out.csv"
    args = ["screen", str(study), "--model", str(model_file), "--out", str(out)]
    assert cli.main(args) == 0
    assert "note:" not in capsys.readouterr().err
    first = list(csv.reader(out.open()))
    forget_provenance(home / "results.sqlite3")
    assert cli.main(args) == 0
    err = capsys.readouterr().err
    assert f"note: {earlier_preparation_note(3)}; --rescreen screens them again" in err
    assert list(csv.reader(out.open())) == first  # the earlier results, as they were
    assert cli.main(args + ["--rescreen"]) == 0
    assert "note:" not in capsys.readouterr().err
    assert cli.main(args) == 0
    assert "note:" not in capsys.readouterr().err  # renewed by --rescreen


def _result(path, software="", preparation=None, p=0.8):
    return ScreenResult(path=str(path), probability=p, threshold=0.5, model="m", model_version="1", model_hash="h",
                        software_version=software, film_preparation=preparation)


def test_the_report_lists_how_each_result_was_made(tmp_path):
    folder = (tmp_path / "study").resolve()
    folder.mkdir()
    paths = [folder / f"{name}.png" for name in ("a", "b", "c")]
    for path in paths:
        path.write_bytes(b"x")
    store = ResultStore(tmp_path / "s.sqlite3")
    session = ReadingSession(store=store, reader="Dr A")
    session.open_study(folder, [str(p) for p in paths])
    session.add_results([_result(paths[0], "0.4.2", 2), _result(paths[1], "0.4.2", 2, p=0.1), _result(paths[2])])
    rows = report_rows(session)
    now = f"PneumoScan 0.4.2, {FILM_PREPARATIONS[2]}"
    assert screened_with(rows) == [(now, 2), (NOT_RECORDED, 1)]
    lines = " ".join(summary_lines(summary_of(session, "study", "m v1"), totals(rows), screened_with(rows)))
    assert f"Screened with: {now}: 2 images; {NOT_RECORDED}: 1 images" in " ".join(lines.split())
    written = {Path(r["path"]).name: r for r in csv.DictReader(write_csv(rows, tmp_path / "r.csv").open())}
    assert (written["a.png"]["software_version"], written["a.png"]["film_preparation"]) == ("0.4.2", "2")
    assert (written["c.png"]["software_version"], written["c.png"]["film_preparation"]) == ("", "")
    store.close()


def test_dicom_results_name_the_software(tmp_path):
    from core.pacs.results_dicom import build_capture, build_sr, read_source
    from pacs_helpers import make_dataset, write_dataset

    source_path = write_dataset(make_dataset(rows=40, cols=48), tmp_path / "src.dcm")
    source = read_source(source_path)
    result = _result(source_path, "0.4.2", 2)
    result.cam = np.ones((4, 4), np.float32)
    assert build_sr(source, result).SoftwareVersions == "PneumoScan 0.4.2"
    assert build_capture(source, source_path, result).SoftwareVersions == "PneumoScan 0.4.2"
    assert "SoftwareVersions" not in build_sr(source, _result(source_path))  # not recorded: not invented


def test_a_sign_off_records_the_version_it_was_signed_in(tmp_path, study):
    db = tmp_path / "s.sqlite3"
    with ResultStore(db) as store:
        signed = store.sign_off(study, "Dr A", "m v1", 3, threshold=0.4)
        assert signed.software_version == PYPROJECT_VERSION
        assert store.study_sign_off(study).text().endswith(f"threshold 0.400, PneumoScan {PYPROJECT_VERSION})")
    conn = sqlite3.connect(db)  # a sign-off from before 0.4.2: nothing invented
    conn.execute("UPDATE study_signoffs SET software_version = NULL")
    conn.commit()
    conn.close()
    with ResultStore(db) as store:
        assert store.study_sign_off(study).text().endswith("(3 images, m v1, threshold 0.400)")
