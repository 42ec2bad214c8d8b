"""The main window end to end: screen a real mini study, review it with the keys,
restart, cancel, re-threshold and export (pytest-qt, off-screen)."""
from __future__ import annotations

import csv
import importlib.util
import threading
import time

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from core.screening.results import AGREE, DISAGREE, NEGATIVE, POSITIVE, UNSURE
from desktop.main_window import RESEARCH_NOTICE, MainWindow
from desktop.results_model import (COL_AI_CALL, COL_PATIENT, COL_READER, COL_STATUS,
                                   COL_STUDY_DATE)
from core.reading.cells import FALSE_POSITIVE, NEEDS_REVIEW, TRUE_POSITIVE
from desktop.workers import running_workers
from desktop.settings import AppSettings
from desktop_helpers import (PATIENT_ID, TINY_MODEL_NAME, install_model, make_study,
                             save_tiny_model)

SCREEN_TIMEOUT_MS = 180_000
STUDY_FILES = 8  # 3 + 3 JPEGs, 1 DICOM, 1 broken file


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiny_model")
    save_tiny_model(directory)
    return directory


@pytest.fixture
def home(tmp_path, monkeypatch, tiny_model_dir):
    home = tmp_path / "home"
    monkeypatch.setenv("PNEUMOSCAN_HOME", str(home))
    install_model(tiny_model_dir, home)
    return home


@pytest.fixture
def study(tmp_path):
    return make_study(tmp_path)


def model_label() -> str:
    # The walk-through tests pin the tiny model: its calls do not depend on
    # whichever model happens to be shipped (see the shipped-model test below).
    return f"{TINY_MODEL_NAME} v1"


def open_window(qtbot, folder, model: str | None = "tiny", **kwargs) -> MainWindow:
    settings = AppSettings()
    if model == "tiny":
        settings.model_name = model_label()
    window = MainWindow(settings, quiet=True, **kwargs)
    qtbot.addWidget(window)
    window.show()
    with qtbot.waitSignal(window.screening_finished, timeout=SCREEN_TIMEOUT_MS):
        window.start(folder)
    return window


def cell(window, row, col) -> str:
    model = window.results_model
    return model.index(row, col).data() or ""


def row_of(window, key) -> int:
    return window.results_model.row_number(key)


def slow_screening(monkeypatch, seconds_per_image=0.15):
    """Screener.screen, slowed down per image so a run can be caught midway."""
    from core.screening.screener import Screener

    original = Screener.screen

    def slow(self, paths, cancel=None):
        for result in original(self, paths, cancel):
            time.sleep(seconds_per_image)
            yield result

    monkeypatch.setattr(Screener, "screen", slow)


def gated_screening(monkeypatch) -> threading.Event:
    """Screener.screen that waits for the returned gate before each image after the first: while
    it is closed the job is blocked, so "returned without waiting" needs no clock."""
    from core.screening.screener import Screener

    original, gate = Screener.screen, threading.Event()

    def gated(self, paths, cancel=None):
        for number, result in enumerate(original(self, paths, cancel)):
            while number and not gate.wait(0.05):
                if cancel is not None and cancel.is_set():
                    break
            yield result

    monkeypatch.setattr(Screener, "screen", gated)
    return gate


def count_screen_calls(monkeypatch) -> list:
    from core.screening.screener import Screener

    calls = []
    original = Screener.screen

    def counted(self, paths, cancel=None):
        calls.append(list(paths))
        return original(self, calls[-1], cancel)

    monkeypatch.setattr(Screener, "screen", counted)
    return calls


def focus_viewer(qtbot, window):
    window.activateWindow()
    window.viewer.view.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.viewer.view, timeout=5000)


def test_screening_lists_every_file_with_its_error_dicom_fields_and_thumbnail(qtbot, home, study):
    window = open_window(qtbot, study)
    model, session = window.results_model, window.session
    assert model.rowCount() == STUDY_FILES
    assert window.last_summary["screened"] == STUDY_FILES and window.last_summary["errors"] == 1
    assert window.device and window.device_label.text().startswith("Device:")
    assert window.research_label.text() == RESEARCH_NOTICE
    # The broken file is one error row; the DICOM row shows patient and study date.
    errors = [r for r in session.rows() if r.error]
    assert len(errors) == 1 and errors[0].file.endswith("broken.jpeg")
    assert cell(window, row_of(window, errors[0].key), COL_STATUS).startswith("Error:")
    window.set_filter("errors")
    assert model.rowCount() == 1
    window.set_filter("all")
    dicom = next(r for r in session.rows() if r.file.endswith("chest.dcm"))
    assert cell(window, row_of(window, dicom.key), COL_PATIENT) == PATIENT_ID
    assert cell(window, row_of(window, dicom.key), COL_STUDY_DATE) == "2024-01-31"
    qtbot.waitUntil(lambda: all(model.thumbnail(r.key) is not None for r in session.rows() if not r.error))


def review_false_positives(qtbot, window):
    """Everything AI-positive (threshold 0.001): the false positives are the 3 readable NORMAL
    images. Opens their queue with the matrix button; returns the queue's keys."""
    window.set_threshold(0.001)
    fp_button = window.confusion.cell_buttons[FALSE_POSITIVE]
    assert fp_button.isVisible() and window.confusion.counts[FALSE_POSITIVE] == 3
    qtbot.mouseClick(fp_button, Qt.MouseButton.LeftButton)
    session = window.session
    assert session.queue_kind == FALSE_POSITIVE and len(session.queue) == 3
    assert session.current == session.queue[0] and window.results_model.rowCount() == 3  # the table lists it
    qtbot.waitUntil(lambda: window.viewer.view.key == session.queue[0])
    return list(session.queue)


def decide_with_keys(qtbot, window) -> list[str]:
    """A on the 1st, D on the 2nd, back, U on the 2nd then Ctrl+Z: returns the queue's keys."""
    first, second, third = review_false_positives(qtbot, window)
    view, session = window.viewer.view, window.session
    focus_viewer(qtbot, window)
    qtbot.keyClick(view, Qt.Key.Key_A)  # agree on 1st, moves on
    assert session.current == second
    qtbot.keyClick(view, Qt.Key.Key_D)  # disagree on 2nd
    assert session.current == third
    qtbot.keyClick(view, Qt.Key.Key_Left)
    qtbot.keyClick(view, Qt.Key.Key_U)  # unsure on 2nd (replaces disagree)...
    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # ...then undone
    qtbot.waitUntil(lambda: getattr(session.row(second).decision, "id", 0) > 0
                    and getattr(session.row(first).decision, "id", 0) > 0)
    return [first, second, third]


def test_a_matrix_cell_opens_its_queue_in_table_and_viewer_with_the_heatmap(qtbot, home, study):
    window = open_window(qtbot, study)
    review_false_positives(qtbot, window)
    assert window.viewer.view.has_heatmap and window.viewer.view.heatmap_shown  # on in a queue
    focus_viewer(qtbot, window)
    assert window.reading_bar.cue.property("active")  # the review keys are live


def test_review_keys_decide_move_undo_and_toggle_the_heatmap(qtbot, home, study):
    window = open_window(qtbot, study)
    first, second, third = decide_with_keys(qtbot, window)
    session, view = window.session, window.viewer.view
    assert session.current == second  # undo goes back to the image it changed
    assert session.row(second).decision.decision == DISAGREE and session.row(first).decision.decision == AGREE
    qtbot.keyClick(view, Qt.Key.Key_Space)
    assert session.current == third
    shown = view.heatmap_shown
    qtbot.keyClick(view, Qt.Key.Key_H)
    assert view.heatmap_shown is not shown


def test_the_reader_column_and_filters_show_the_decisions(qtbot, home, study):
    window = open_window(qtbot, study)
    first, second, _third = decide_with_keys(qtbot, window)
    assert cell(window, row_of(window, first), COL_READER) == f"Agree: {POSITIVE}"
    assert cell(window, row_of(window, second), COL_READER) == f"Disagree: AI said {POSITIVE}"
    window.close_queue()
    window.set_filter("disagreements")
    assert window.results_model.rowCount() == 1


def test_decisions_and_their_history_are_stored_and_shown_after_a_restart(qtbot, home, study):
    window = open_window(qtbot, study)
    first, second, third = decide_with_keys(qtbot, window)
    window.close()  # lets the store worker finish its writes

    from core.reading.store import ResultStore
    with ResultStore() as store:
        latest = store.image_decisions([first, second, third])
        history = store.image_history(second)
    assert {k: d.decision for k, d in latest.items()} == {first: AGREE, second: DISAGREE}
    assert [(d.decision, d.undone) for d in history] == [(DISAGREE, False), (UNSURE, True)]
    assert history[0].ai_call == POSITIVE and history[0].threshold == pytest.approx(0.001)

    # Restart: stored results at once, nothing re-screened, decisions still shown.
    from desktop.app import start_folder
    again = open_window(qtbot, start_folder(None, AppSettings()))  # no folder: the last study
    assert again.study_folder == study.resolve()
    # Stored results are reused; the broken file is tried again (the loader may have improved).
    assert again.last_summary["from_store"] == STUDY_FILES - 1 and again.last_summary["screened"] == 1
    assert again.session.row(first).decision.decision == AGREE
    again.refresh()
    assert "Disagree" in cell(again, row_of(again, second), COL_READER)
    again.show_image(second)
    qtbot.waitUntil(lambda: len(again.details.history_lines) == 2)
    assert again.details.history_lines[1].startswith("[undone]")


def test_threshold_relabels_calls_and_matrix_without_rescreening(qtbot, home, study, monkeypatch):
    window = open_window(qtbot, study)
    calls = count_screen_calls(monkeypatch)
    readable = [r for r in window.session.rows() if not r.error]

    window.threshold_control.spin.setValue(0.001)
    assert window.threshold == pytest.approx(0.001)
    assert window.threshold_control.slider.value() == 1
    assert {cell(window, row_of(window, r.key), COL_AI_CALL) for r in readable} == {POSITIVE}
    assert window.confusion.counts[TRUE_POSITIVE] == 4

    window.threshold_control.slider.setValue(999)
    assert window.threshold_control.spin.value() == pytest.approx(0.999)
    assert {cell(window, row_of(window, r.key), COL_AI_CALL) for r in readable} == {NEGATIVE}
    assert window.confusion.counts[TRUE_POSITIVE] == 0 and window.confusion.counts[FALSE_POSITIVE] == 0
    window.refresh()
    combo = window.filter_combo
    assert combo.itemText(combo.findData("ai_positive")) == "AI positive (0)"
    assert calls == [] and not window.is_screening


def screened_rows(window) -> int:
    return window.session.counts()["screened"]


def test_cancel_midway_shows_the_unscreened_then_screens_only_the_rest(qtbot, home, tmp_path, monkeypatch):
    study = make_study(tmp_path, per_class=8, dicom=False, bad_file=False)
    slow_screening(monkeypatch)
    settings = AppSettings()
    settings.model_name = model_label()
    window = MainWindow(settings, quiet=True)
    qtbot.addWidget(window)
    window.show()
    window.start(study)
    qtbot.waitUntil(lambda: screened_rows(window) >= 2, timeout=SCREEN_TIMEOUT_MS)
    assert window.status.progress.isVisible() and window.status.progress.maximum() == 16
    with qtbot.waitSignal(window.screening_finished, timeout=SCREEN_TIMEOUT_MS) as finished:
        window.cancel_screening()  # stops within one batch; the summary still comes
    assert finished.args[0]["cancelled"]
    partial = screened_rows(window)
    assert 2 <= partial < 16
    # Every file is still listed; the unscreened ones are said to be so, everywhere.
    assert window.results_model.rowCount() == 16
    window.refresh()
    left = 16 - partial
    assert f"{left} not screened" in window.status.counts_label.text()
    assert window.confusion.unscreened_note.isVisibleTo(window) and str(left) in window.confusion.unscreened_note.text()
    combo = window.filter_combo
    assert combo.itemText(combo.findData("unscreened")) == f"Not screened ({left})"
    assert combo.itemText(combo.findData("all")) == "All (16)"
    unscreened = next(r for r in window.session.rows() if not r.screened)
    assert cell(window, row_of(window, unscreened.key), COL_STATUS) == "Not screened"
    assert not window.status.progress.isVisible()

    calls = count_screen_calls(monkeypatch)
    with qtbot.waitSignal(window.screening_finished, timeout=SCREEN_TIMEOUT_MS) as finished:
        window.run_action.trigger()
    assert screened_rows(window) == 16
    assert finished.args[0]["from_store"] == partial
    assert len(calls) == 1 and len(calls[0]) == 16 - partial


def test_switching_study_and_closing_during_a_run_never_wait_for_the_job(qtbot, home, tmp_path, monkeypatch):
    study = make_study(tmp_path, per_class=8, dicom=False, bad_file=False)
    gate = gated_screening(monkeypatch)  # the job blocks after its first image until the gate opens
    settings = AppSettings()
    settings.model_name = model_label()
    window = MainWindow(settings, quiet=True)
    qtbot.addWidget(window)
    window.show()
    window.start(study)
    qtbot.waitUntil(lambda: screened_rows(window) >= 1, timeout=SCREEN_TIMEOUT_MS)
    # Switching study mid-run returns while the old job is still blocked; its late results
    # never reach the new study.
    second = make_study(tmp_path / "second", per_class=2, dicom=False, bad_file=False)
    window.open_study(second)
    assert not gate.is_set() and all(row.key.startswith(str(second.resolve())) for row in window.session.rows())
    gate.set()
    qtbot.waitUntil(lambda: screened_rows(window) >= 1, timeout=SCREEN_TIMEOUT_MS)
    assert all(row.key.startswith(str(second.resolve())) for row in window.session.rows())
    assert len(window.session) == 4
    gate.clear()
    window.start_screening(use_stored=False)
    qtbot.waitUntil(lambda: window.is_screening, timeout=10_000)
    window.close()  # returns although the job is blocked
    assert not window.is_screening and not gate.is_set()
    gate.set()
    qtbot.waitUntil(lambda: running_workers() == 0, timeout=SCREEN_TIMEOUT_MS)  # the job ends on its own


def test_unknown_truth_needs_review_queue_and_exports(qtbot, home, tmp_path):
    study = make_study(tmp_path, per_class=2, dicom=False, bad_file=True, labelled=False)
    window = open_window(qtbot, study)
    assert not window.confusion.cell_buttons[TRUE_POSITIVE].isVisible()
    assert window.confusion.truth_note.isVisible()

    window.set_threshold(0.5)
    rows = [r for r in window.session.rows() if r.probability is not None]
    uncertain = [r for r in rows if r.probability >= 0.5 or abs(r.probability - 0.5) < 0.15]
    qtbot.mouseClick(window.confusion.review_button, Qt.MouseButton.LeftButton)
    assert window.session.queue_kind == NEEDS_REVIEW
    assert sorted(window.session.queue) == sorted(r.key for r in uncertain)

    csv_path, pdf_path = tmp_path / "out.csv", tmp_path / "out.pdf"
    with qtbot.waitSignal(window.exported, timeout=30_000):
        window.export_csv(str(csv_path))
    with open(csv_path, newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 5
    with qtbot.waitSignal(window.exported, timeout=60_000):
        window.export_pdf(str(pdf_path))
    assert pdf_path.read_bytes()[:5] == b"%PDF-"


def test_missing_folder_train_action_and_research_notice(qtbot, home, tmp_path, monkeypatch):
    window = MainWindow(AppSettings(), quiet=True)
    qtbot.addWidget(window)
    with qtbot.waitSignal(window.screening_failed, timeout=30_000):
        window.start(tmp_path / "no-such-study")
    assert any("does not exist" in message for message in window.messages)

    window.train_action.trigger()
    if importlib.util.find_spec("desktop.wizard") is None:
        assert "not available yet" in window.messages[-1]
    else:
        from desktop.wizard import TrainingWizard
        wizards = [w for w in window.findChildren(TrainingWizard) if w.isVisible()]
        assert len(wizards) == 1
        wizards[0].reject()

    monkeypatch.delenv("PNEUMOSCAN_NO_FIRST_RUN")
    assert window.show_first_run_notice() is None  # quiet windows (smoke test) never show it
    loud = MainWindow(AppSettings(), quiet=False)
    qtbot.addWidget(loud)
    box = loud.show_first_run_notice()
    assert box is not None and RESEARCH_NOTICE in box.text()
    box.close()
    assert loud.show_first_run_notice() is None
    assert not AppSettings().research_notice_due()


def test_shipped_default_model_screens_the_study(qtbot, home, study):
    from core.models.registry import find_model, list_models

    if not any(entry.shipped for entry in list_models()):
        pytest.skip("no shipped model in models/ yet")
    default = find_model(None)
    window = open_window(qtbot, study, model=None)  # no preference: the registry default
    assert window.current_entry.card.sha256 == default.card.sha256
    assert window.threshold == pytest.approx(default.card.threshold)  # exact, not the 3-decimal display
    rows = window.session.rows()
    assert len(rows) == STUDY_FILES and sum(1 for r in rows if r.error) == 1
    for threshold in (0.2, 0.8):
        window.set_threshold(threshold)
        expected = {r.key: (POSITIVE if r.probability >= threshold else NEGATIVE) for r in rows if r.probability is not None}
        assert {k: cell(window, row_of(window, k), COL_AI_CALL) for k in expected} == expected


def test_switching_model_rescreens_with_the_new_model(qtbot, home, study):
    window = open_window(qtbot, study)
    assert window.current_entry.card.version == 1
    decided = next(r.key for r in window.session.rows() if not r.error)
    window.open_queue(NEEDS_REVIEW)
    window.session.go_to(decided)  # any image, then a decision in review
    window.decide(AGREE)
    qtbot.waitUntil(lambda: getattr(window.session.row(decided).decision, "id", 0) > 0)
    save_tiny_model(home / "models", threshold=0.42, version=2, seed=11)  # e.g. the wizard saved it
    with qtbot.waitSignal(window.screening_finished, timeout=SCREEN_TIMEOUT_MS) as finished:
        window.select_model(f"{TINY_MODEL_NAME} v2")
    assert window.current_entry.card.version == 2 and window.threshold == pytest.approx(0.42)
    assert finished.args[0]["screened"] == STUDY_FILES  # other weights: nothing stored yet
    assert {r.result.model_version for r in window.session.rows()} == {"2"}
    assert AppSettings().model_name == f"{TINY_MODEL_NAME} v2"
    # Decisions belong to the image: rows screened by the new model still show them.
    assert window.session.row(decided).decision.decision == AGREE
