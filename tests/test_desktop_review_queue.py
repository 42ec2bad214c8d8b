"""Review-queue, study and export logic of the desktop app, without Qt or a model."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from core.screening.results import NEGATIVE, POSITIVE
from desktop.review_queue import (FALSE_NEGATIVE, FALSE_POSITIVE, FILTER_DISAGREEMENTS,
                                  FILTER_ERRORS, FILTER_NEEDS_REVIEW, NEEDS_REVIEW, TRUE_NEGATIVE,
                                  TRUE_POSITIVE, DecisionUndoStack, ReviewItem, ReviewQueue,
                                  confusion_counts, matches_filter, needs_review_keys)
from desktop.study import scan_study


def item(key, p, truth=None, reader=None, error=False):
    return ReviewItem(key=key, probability=p, truth=truth, reader_label=reader, error=error)


KNOWN = [
    item("fn_confident", 0.05, POSITIVE), item("fn_close", 0.45, POSITIVE),
    item("fp_confident", 0.97, NEGATIVE), item("fp_close", 0.55, NEGATIVE),
    item("tp", 0.9, POSITIVE), item("tn", 0.1, NEGATIVE),
    item("broken", None, NEGATIVE, error=True),
]


def test_confusion_counts_follow_the_threshold():
    assert confusion_counts(KNOWN, 0.5) == {FALSE_NEGATIVE: 2, FALSE_POSITIVE: 2,
                                            TRUE_POSITIVE: 1, TRUE_NEGATIVE: 1}
    assert confusion_counts(KNOWN, 0.01) == {FALSE_NEGATIVE: 0, FALSE_POSITIVE: 3,
                                             TRUE_POSITIVE: 3, TRUE_NEGATIVE: 0}


def test_needs_review_with_truth_puts_false_negatives_then_false_positives_first():
    assert needs_review_keys(KNOWN, 0.5) == ["fn_confident", "fn_close", "fp_confident", "fp_close"]


def test_needs_review_without_truth_holds_positives_and_the_uncertain_band_most_uncertain_first():
    unknown = [item("sure_neg", 0.02), item("edge_low", 0.42), item("edge_high", 0.51),
               item("sure_pos", 0.99), item("failed", None, error=True)]
    assert needs_review_keys(unknown, 0.5) == ["edge_high", "edge_low", "sure_pos"]
    # A higher threshold leaves the confident negative out and moves the band.
    assert needs_review_keys(unknown, 0.9) == ["sure_pos"]


def test_queue_navigation_stops_at_both_ends_and_resumes_at_first_undecided():
    queue = ReviewQueue.build(FALSE_NEGATIVE, KNOWN, 0.5)
    assert queue.keys == ["fn_confident", "fn_close"] and queue.current == "fn_confident"
    assert queue.previous() == "fn_confident"
    assert queue.next() == "fn_close" and queue.at_end
    assert queue.next() == "fn_close"
    assert queue.position_text() == "False negatives: 2 of 2"
    assert queue.start_at_first_undecided({"fn_confident"}) == "fn_close"
    assert ReviewQueue.build(NEEDS_REVIEW, [], 0.5).current is None


def test_filters():
    disagree = item("x", 0.8, reader=NEGATIVE)
    assert matches_filter(disagree, FILTER_DISAGREEMENTS, 0.5)
    assert not matches_filter(disagree, FILTER_DISAGREEMENTS, 0.9)  # AI says NORMAL there too
    assert matches_filter(KNOWN[-1], FILTER_ERRORS, 0.5)
    assert not matches_filter(KNOWN[-1], FILTER_NEEDS_REVIEW, 0.5)


def test_undo_stack_is_last_in_first_out():
    stack = DecisionUndoStack()
    stack.push("a", 1)
    stack.push("b", 2)
    assert stack.pop() == ("b", 2) and stack.pop() == ("a", 1) and stack.pop() is None


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_truth_from_sub_folders_and_from_labels_csv(tmp_path):
    study = tmp_path / "s"
    a = _touch(study / "NORMAL" / "a.png")
    b = _touch(study / "PNEUMONIA" / "b.png")
    c = _touch(study / "c.png")
    found = scan_study(study)
    assert found.truth == {str(a.resolve()): NEGATIVE, str(b.resolve()): POSITIVE}
    assert found.truth_source == "sub-folders"
    # Opening a class folder itself still labels its files.
    assert scan_study(study / "PNEUMONIA").truth == {str(b.resolve()): POSITIVE}

    (study / "labels.csv").write_text("path,label\nc.png,pneumonia\nNORMAL/a.png,PNEUMONIA\nmissing,??\n")
    found = scan_study(study)
    assert found.truth == {str(c.resolve()): POSITIVE, str(a.resolve()): POSITIVE}
    assert found.truth_source == "labels.csv" and len(found.warnings) == 1


def test_missing_study_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="study folder not found"):
        scan_study(tmp_path / "nope")


def test_csv_and_pdf_exports(tmp_path):
    from desktop.export import ExportRow, ExportSummary, summary_counts, write_csv, write_pdf

    def row(name, p, truth, decision=None, label=None, error=None):
        call = None if p is None else (POSITIVE if p >= 0.5 else NEGATIVE)
        return ExportRow(file=name, path=f"/s/{name}", patient_id="", study_date="", probability=p,
                         threshold=0.5, ai_call=call, truth=truth, reader_decision=decision,
                         reader_label=label, decision_time=None, model="m", model_version="1",
                         model_hash="h", status="error" if error else "screened", error=error)

    rows = [row("a.png", 0.9, POSITIVE, "agree", POSITIVE), row("b.png", 0.7, NEGATIVE, "disagree", NEGATIVE),
            row("c.png", 0.2, NEGATIVE), row("d.png", 0.4, POSITIVE), row("e.png", None, None, error="bad")]
    counts = summary_counts(rows)
    assert counts["ai_positive"] == 2 and counts["errors"] == 1 and counts["reader_disagrees"] == 1

    csv_path = write_csv(rows, tmp_path / "out.csv")
    with open(csv_path, newline="") as handle:
        records = list(csv.DictReader(handle))
    assert [r["file"] for r in records] == ["a.png", "b.png", "c.png", "d.png", "e.png"]
    assert records[1]["reader_decision"] == "disagree" and records[4]["error"] == "bad"

    pdf_path = write_pdf(rows, ExportSummary("/s", "m v1", 0.5, "now"), tmp_path / "out.pdf")
    assert pdf_path.read_bytes()[:5] == b"%PDF-" and pdf_path.stat().st_size > 5000
    # Truth unknown: still one page, without matrix or ROC.
    unknown = [row("x.png", 0.8, None)]
    assert write_pdf(unknown, ExportSummary("/s", "m", 0.5, "now"), tmp_path / "u.pdf").is_file()


def test_files_that_are_not_images_are_listed_with_reasons(tmp_path):
    study = tmp_path / "s"
    _touch(study / "a.png")
    (study / "notes.txt").write_text("x")
    (study / "labels.csv").write_text("path,label\na.png,normal\n")
    found = scan_study(study)
    assert found.skipped == [(str(study.resolve() / "notes.txt"), "not an image (.txt file)")]
    assert found.warnings == ["Skipped 1 file(s) that are not images: notes.txt (not an image (.txt file))"]


def test_pdf_pages_keep_every_text_on_the_page():
    """No label or listing line runs off the page (the old report clipped an axis label)."""
    import numpy as np
    from matplotlib.text import Text

    from desktop.export import ExportRow, ExportSummary, _draw_entries, _new_page, _summary_page, report_sections, \
        summary_counts

    rows = [ExportRow(file=f"PNEUMONIA/{'very-long-file-name-' * 4}{i}.jpeg", path=f"/s/{i}.jpeg",
                      patient_id=f"patient-with-a-long-identifier-{i}", study_date="", probability=0.05 + i / 25,
                      threshold=0.5, ai_call=POSITIVE if 0.05 + i / 25 >= 0.5 else NEGATIVE,
                      truth=POSITIVE if i % 2 else NEGATIVE, reader_decision="disagree" if i % 3 == 0 else None,
                      reader_label=None, decision_time=None, model="m", model_version="1", model_hash="h",
                      status="screened", error=None, view="PA", reader="Dr A Very Long Reader Name",
                      decision_ai_call=NEGATIVE, thumbnail=np.zeros((30, 40), np.uint8)) for i in range(24)]
    summary = ExportSummary("study", "m v1", 0.5, "now", reader="Dr A Very Long Reader Name")
    sections = report_sections(rows)
    entries = [(title, r) for title, members in sections for r in members]
    figures = [_summary_page(rows, summary, summary_counts(rows), sections)]
    done = _draw_entries(figures[0], entries, top=0.46)
    while done < len(entries):
        figures.append(_new_page(summary))
        done += _draw_entries(figures[-1], entries[done:], top=0.92)
    for fig in figures:
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        page = fig.bbox
        for text in fig.findobj(Text):
            if not text.get_visible() or not text.get_text().strip():
                continue
            box = text.get_window_extent(renderer)
            assert page.x0 - 1 <= box.x0 and box.x1 <= page.x1 + 1, text.get_text()
            assert page.y0 - 1 <= box.y0 and box.y1 <= page.y1 + 1, text.get_text()
