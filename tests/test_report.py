"""Issue 19, item 2: the report accounts for every file of the study, in its sections, with
totals that add up, "Page i of n" and full file names; `pneumoscan-cli report` writes the
same report (core.reading.report) from the command line."""
from __future__ import annotations

import csv
import re

import pytest

from core import cli, paths
from core.reading.report import (DISAGREEMENTS, ERRORS, FALSE_NEGATIVES, FALSE_POSITIVES, OUT_OF_SCOPE, SKIPPED,
                                 THE_REST, report_rows, sections, summary_of, totals, write_csv)
from core.reading.report_pdf import write_pdf
from core.reading.session import ReadingSession
from core.reading.store import ResultStore
from core.screening.results import DISAGREE, NEGATIVE, POSITIVE, ScreenResult
from engine_models import save_tiny_model, write_images

LONG = "1.2.840.113619.2.55.3.604688119.971.1466583633.274.20190312.113045.99999999999999999999999999999.dcm"


def pdf_lines(path) -> list[str]:
    """The PDF's text lines, in drawing order (the report writes uncompressed streams)."""
    data = path.read_bytes()
    found = re.findall(rb"\(((?:[^()\\]|\\.)*)\)\s*Tj", data)
    return [re.sub(rb"\\(.)", rb"\1", line).decode("latin-1") for line in found]


def result(path, p, scope="", error=None):
    return ScreenResult(path=str(path), probability=p, threshold=0.5, model="m", model_version="1",
                        model_hash="h", error=error, scope=scope)


@pytest.fixture
def session_and_skipped(tmp_path):
    folder = (tmp_path / "study").resolve()
    spec = {"fn.png": (0.1, POSITIVE, ""), "fp.png": (0.9, NEGATIVE, ""), "tp.png": (0.8, POSITIVE, ""),
            "mr.png": (0.7, None, "not a chest X-ray"), "broken.png": (None, None, ""),
            f"dicom/{LONG}": (0.2, None, ""), "later.png": (None, None, "")}
    keys, truth, results = {}, {}, []
    for name, (p, label, scope) in spec.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
        keys[name] = str(path)
        if label:
            truth[str(path)] = label
        if name == "broken.png":
            results.append(result(path, None, error="cannot decode the file"))
        elif p is not None:
            results.append(result(path, p, scope))
    store = ResultStore(tmp_path / "s.sqlite3")
    session = ReadingSession(store=store, reader="Dr A")
    session.open_study(folder, list(keys.values()), truth)
    session.add_results(results)
    session.open_queue("TP")
    session.decide(DISAGREE)
    skipped = [(str(folder / "notes.txt"), "not an image (.txt file)")]
    yield session, skipped, keys
    store.close()


def test_every_file_is_in_exactly_one_section_and_the_totals_add_up(session_and_skipped):
    session, skipped, keys = session_and_skipped
    rows = report_rows(session, skipped)
    by_file = {r.file: r.section for r in rows}
    assert len(rows) == len(by_file) == len(keys) + 1  # every image and the skipped note, once each
    assert by_file["fn.png"] == FALSE_NEGATIVES and by_file["fp.png"] == FALSE_POSITIVES
    assert by_file["tp.png"] == DISAGREEMENTS and by_file["mr.png"] == OUT_OF_SCOPE
    assert by_file["broken.png"] == ERRORS and by_file["notes.txt"] == SKIPPED
    assert by_file["later.png"] == THE_REST and by_file[f"dicom/{LONG}"] == THE_REST
    c = totals(rows)
    assert c["files"] == c["images"] + c["skipped"] == 8
    assert c["images"] == c["screened"] + c["out_of_scope"] + c["errors"] + c["not_screened"]
    assert [title for title, _ in sections(rows)] == [FALSE_NEGATIVES, DISAGREEMENTS, FALSE_POSITIVES, OUT_OF_SCOPE,
                                                      ERRORS, SKIPPED, THE_REST]
    reasons = {r.file: r.reason for r in rows}
    assert reasons["mr.png"] == "not a chest X-ray" and reasons["broken.png"] == "cannot decode the file"


def test_pdf_names_every_file_in_full_with_page_numbers(session_and_skipped, tmp_path):
    session, skipped, keys = session_and_skipped
    rows = report_rows(session, skipped)
    # Enough entries for several pages: copies of the rows with other names.
    from dataclasses import replace
    many = rows + [replace(r, file=f"extra/{i:03d}_{r.file}", path=f"{r.path}.{i}") for i in range(12) for r in rows]
    pdf = write_pdf(many, summary_of(session, "study", "m v1"), tmp_path / "r.pdf")
    lines = pdf_lines(pdf)
    pages = [line for line in lines if line.startswith("Page ")]
    assert len(pages) >= 3 and pages == [f"Page {i} of {len(pages)}" for i in range(1, len(pages) + 1)]
    text = "".join(lines)
    for r in many:
        assert r.file in text  # never cut (long names wrap onto the next line)
    assert "Out of scope: not a chest X-ray; AI call withheld" in text
    assert "Skipped: not an image (.txt file)" in text and "Error: cannot decode the file" in text
    assert f"Files found: {len(many)} = {len(many) - 13} images + 13 skipped (not images)" in lines


def test_csv_has_one_row_per_file_with_the_contract_columns(session_and_skipped, tmp_path):
    session, skipped, keys = session_and_skipped
    path = write_csv(report_rows(session, skipped), tmp_path / "r.csv", summary_of(session, "study", "m"))
    records = list(csv.DictReader(path.open()))
    required = "path,patient,study,probability,prediction,threshold,model,error,scope,decision,reader,decided_at," \
               "decision_ai_call".split(",")
    assert list(records[0])[:len(required)] == required and len(records) == 8
    tp = next(r for r in records if r["file"] == "tp.png")
    assert (tp["decision"], tp["reader"], tp["decision_ai_call"], tp["reader_decision"]) == (
        DISAGREE, "Dr A", POSITIVE, DISAGREE)
    assert next(r for r in records if r["file"] == "mr.png")["prediction"] == "OUT_OF_SCOPE"


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    monkeypatch.setenv("PNEUMOSCAN_HOME", str(tmp_path / "home"))
    return save_tiny_model(paths.user_models_dir(), threshold=0.5)


def test_cli_report_screens_what_is_missing_and_accounts_for_every_file(tiny, tmp_path, capsys):
    folder = tmp_path / "messy"
    write_images(folder / "NORMAL", 3, seed=1)
    write_images(folder / "PNEUMONIA", 3, seed=2)
    adults = write_images(folder / "adults", 10, seed=3)
    (folder / "broken.png").write_bytes(b"not a png")
    (folder / "note.txt").write_text("reader's note")
    assert cli.main(["screen", str(folder), "--model", "tiny", "--out", str(tmp_path / "screen.csv")]) == 0
    write_images(folder / "late", 1, seed=4)  # arrives after screening: the report screens it
    pdf, out = tmp_path / "report.pdf", tmp_path / "report.csv"
    assert cli.main(["report", str(folder), "--model", "tiny", "--pdf", str(pdf), "--csv", str(out)]) == 0
    assert "19 files (18 images, 1 skipped)" in capsys.readouterr().out
    records = list(csv.DictReader(out.open()))
    assert len(records) == 19
    adult_patients = {r["patient"] for r in records if r["file"].startswith("adults/")}
    assert len(adult_patients) == 10 and "adults" not in adult_patients  # ten films, ten patients
    text = "".join(pdf_lines(pdf))
    for r in records:
        assert r["file"] in text
    assert next(r for r in records if r["file"] == "note.txt")["status"] == "skipped"
    assert next(r for r in records if r["file"] == "broken.png")["status"] == "error"
    with ResultStore() as store:  # the late film is stored now
        assert store.get_result(folder / "late" / "img_000.png", tiny.card.sha256) is not None
    assert len(adults) == 10


def test_cli_report_refuses_bad_arguments_with_a_message(tiny, tmp_path, capsys):
    assert cli.main(["report", str(tmp_path / "missing"), "--pdf", str(tmp_path / "r.pdf")]) == 2
    assert "study folder not found" in capsys.readouterr().err
    (tmp_path / "s").mkdir()
    assert cli.main(["report", str(tmp_path / "s"), "--pdf", str(tmp_path / "no" / "r.pdf")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_names_outside_the_pdf_fonts_print_as_code_points_never_as_question_marks(tmp_path):
    """The PDF's core fonts cover Windows-1252: two Chinese file names both printed as
    "??.png", so the signed report no longer said which file was which."""
    folder = (tmp_path / "研究").resolve()
    names = ["患者.png", "病人.png", "Müller.png"]
    paths = [folder / name for name in names]
    folder.mkdir()
    for path in paths:
        path.write_bytes(b"x")
    store = ResultStore(tmp_path / "s.sqlite3")
    session = ReadingSession(store=store, reader="Dr 李")
    session.open_study(folder, [str(p) for p in paths])
    session.add_results([result(p, 0.2 + i / 10) for i, p in enumerate(paths)])
    rows = report_rows(session)
    lines = pdf_lines(write_pdf(rows, summary_of(session, folder.name, "m v1"), tmp_path / "r.pdf"))
    text = "\n".join(lines)
    assert "\\u60a3\\u8005.png" in text and "\\u75c5\\u4eba.png" in text and "Müller.png" in text
    assert "??" not in text
    assert "Dr \\u674e" in text and "reading report: \\u7814\\u7a76" in text
    assert "Characters the PDF's fonts lack are shown as \\uXXXX" in text
    written = {r["file"] for r in csv.DictReader(write_csv(rows, tmp_path / "r.csv").open(encoding="utf-8"))}
    assert written == set(names)  # the CSV keeps the names as they are
    store.close()
