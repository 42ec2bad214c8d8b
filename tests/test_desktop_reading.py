"""The reading workflow in the main window (pytest-qt, off-screen): the key-focus rule,
table/viewer sync, filters across studies, the layout at 1280x800, grouping, invert,
window/level presets, the heatmap default, sign-off, the F1 sheet and the PDF report.

The studies are screened once per module into a template store; each test opens
them from a copy, so no test loads a model (fast on a 2-core machine).
"""
from __future__ import annotations

import re
import shutil
import zlib
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QApplication, QLabel

from core.screening.results import AGREE, DISAGREE, NEGATIVE, OUT_OF_SCOPE, POSITIVE
from core.reading.cells import FALSE_NEGATIVE, NEEDS_REVIEW
from core.reading.session import OUT_OF_SCOPE_QUEUE
from desktop.main_window import MainWindow
from desktop.results_model import (COL_FILE, COL_PATIENT, COL_READER, COL_STUDY_CALL,
                                   COL_VIEW)
from desktop.settings import AppSettings
from desktop.viewer import ViewerPanel, load_view_image
from desktop_helpers import (TINY_MODEL_NAME, install_model, make_study, save_tiny_model,
                             source_images)

LABEL = f"{TINY_MODEL_NAME} v1"
TIMEOUT_MS = 120_000


def write_dicom(source: Path, target: Path, patient: str, study_uid: str, view: str, bits: int = 8) -> Path:
    """A MONOCHROME2 DICOM of a real X-ray with patient, study and view (8 or 12 bits stored)."""
    import cv2
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    pixels = cv2.resize(cv2.imread(str(source), cv2.IMREAD_GRAYSCALE), (128, 128), interpolation=cv2.INTER_AREA)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientID, ds.StudyInstanceUID, ds.ViewPosition = "CR", patient, study_uid, view
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PixelRepresentation = 1, "MONOCHROME2", 0
    if bits == 8:
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
        ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    else:
        values = (pixels.astype(np.uint16) * 16).astype(np.uint16)  # 0..4080 in 12 bits
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
        ds.PixelData = np.ascontiguousarray(values).tobytes()
    ds.save_as(target, enforce_file_format=True)
    return target


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("reading_model")
    save_tiny_model(directory)
    return directory


@pytest.fixture(scope="module")
def studies(tmp_path_factory, model_dir):
    """Study A: labelled (NORMAL/ PNEUMONIA/ + a DICOM). Study B: unlabelled, two DICOM patients
    (P1: PA + lateral in one study, P2: AP) and a patient folder of JPEGs. Screened into a template store."""
    root = tmp_path_factory.mktemp("reading_studies")
    a = make_study(root / "a", per_class=3, dicom=True, bad_file=False)
    b = root / "b" / "study"
    (b / "anna").mkdir(parents=True)
    sources = source_images("PNEUMONIA", 4) + source_images("NORMAL", 5)
    write_dicom(sources[0], b / "img10.dcm", "P1", "1.2.840.1", "LL")
    write_dicom(sources[1], b / "img2.dcm", "P1", "1.2.840.1", "PA")
    write_dicom(sources[2], b / "img1.dcm", "P2", "1.2.840.2", "AP")
    for i, source in enumerate(sources[5:7]):
        shutil.copy(source, b / "anna" / f"film{i}.jpeg")
    home = root / "home"
    install_model(model_dir, home)
    with pytest.MonkeyPatch.context() as env:  # a module's fixture: monkeypatch is per test
        env.setenv("PNEUMOSCAN_HOME", str(home))
        from core.models.registry import find_model, load_model
        from core.reading.store import ResultStore
        from core.reading.study_screening import screen_study

        loaded = load_model(find_model(LABEL))
        template = root / "template.sqlite3"
        with ResultStore(template) as store:
            for folder in (a, b):
                list(screen_study(folder, loaded, store, gradcam=True))
    return {"a": a.resolve(), "b": b.resolve(), "template": template}


@pytest.fixture
def home(tmp_path, monkeypatch, model_dir):
    home = tmp_path / "home"
    monkeypatch.setenv("PNEUMOSCAN_HOME", str(home))
    install_model(model_dir, home)
    return home


@pytest.fixture
def store_path(tmp_path, studies):
    path = tmp_path / "store.sqlite3"
    shutil.copy(studies["template"], path)
    return path


def open_window(qtbot, folder, store_path, reader: str | None = None) -> MainWindow:
    settings = AppSettings()
    settings.model_name = LABEL
    if reader is not None:
        settings.reader_name = reader
    window = MainWindow(settings, store_path=store_path, quiet=True)
    qtbot.addWidget(window)
    window.resize(1280, 800)
    window.show()
    with qtbot.waitSignal(window.screening_finished, timeout=TIMEOUT_MS) as finished:
        window.start(folder)
    assert finished.args[0]["screened"] == 0  # all from the template store: no model loaded
    return window


def focus(qtbot, window, widget) -> None:
    window.activateWindow()
    widget.setFocus()
    qtbot.waitUntil(lambda: QApplication.focusWidget() is widget, timeout=5000)


def text_at(window, key, column) -> str:
    return window.results_model.index(window.results_model.row_number(key), column).data() or ""


def test_decision_keys_act_only_in_review_with_the_viewer_or_table_focused(qtbot, home, studies, store_path):
    window = open_window(qtbot, studies["a"], store_path)
    session, view = window.session, window.viewer.view
    start = session.current
    assert start is not None
    # No queue open: A on the focused viewer records nothing, and says why.
    focus(qtbot, window, view)
    assert not window.reading_bar.cue.property("active") and "off" in window.reading_bar.cue.text()
    qtbot.keyClick(view, Qt.Key.Key_A)
    assert session.row(start).decision is None and "open a queue" in window.statusBar().currentMessage()
    # A queue open, but the focus in a text field (e.g. the threshold): letters are letters.
    window.open_queue(NEEDS_REVIEW)
    current = session.current
    spin = window.threshold_control.spin
    focus(qtbot, window, spin)
    assert not window.reading_bar.cue.property("active")
    for key in (Qt.Key.Key_U, Qt.Key.Key_U, Qt.Key.Key_D):
        qtbot.keyClick(spin, key)
    assert all(row.decision is None for row in session.rows())
    # In review with the viewer focused: the cue is on and keys decide.
    focus(qtbot, window, view)
    assert window.reading_bar.cue.property("active") and window.reading_bar.cue.text().startswith("Decision keys on")
    qtbot.keyClick(view, Qt.Key.Key_A)
    assert session.row(current).decision.decision == AGREE
    # ... and with the table (which lists the queue) focused.
    focus(qtbot, window, window.table)
    target = session.current
    qtbot.keyClick(window.table, Qt.Key.Key_D)
    assert session.row(target).decision.decision == DISAGREE
    window.close_queue()
    focus(qtbot, window, view)
    assert not window.reading_bar.cue.property("active")


def test_table_and_viewer_always_show_the_same_image(qtbot, home, studies, store_path):
    window = open_window(qtbot, studies["a"], store_path)
    session, model = window.session, window.results_model

    def in_step():
        key = session.current
        return (model.key_at(window.table.currentIndex().row()) == key
                and window.viewer.view.key == key)

    window.set_filter("ai_positive")
    window.set_threshold(0.999)  # every truth-positive image becomes a false negative
    qtbot.mouseClick(window.confusion.cell_buttons[FALSE_NEGATIVE], Qt.MouseButton.LeftButton)
    assert session.queue_kind == FALSE_NEGATIVE and model.rowCount() == len(session.queue) == 4
    qtbot.waitUntil(in_step)
    focus(qtbot, window, window.viewer.view)
    qtbot.keyClick(window.viewer.view, Qt.Key.Key_Right)
    qtbot.waitUntil(in_step)
    # Clicking a row in the table moves the viewer (and the queue position).
    last = model.rowCount() - 1
    rect = window.table.visualRect(model.index(last, COL_FILE))
    qtbot.mouseClick(window.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.waitUntil(lambda: session.current == model.key_at(last) and in_step())
    assert window.reading_bar.queue_label.text().startswith(f"False negatives: {last + 1} of 4")
    # A filter that hides the image moves the cursor onto a listed one, in both panes.
    window.set_filter("ai_positive")
    qtbot.waitUntil(lambda: session.current is None or in_step())


def test_filters_reset_per_study_and_decisions_follow_the_image_into_a_subfolder(qtbot, home, studies,
                                                                                   store_path):
    window = open_window(qtbot, studies["a"], store_path, reader="Dr Reader")
    window.set_threshold(0.0)
    window.open_queue(NEEDS_REVIEW)
    key = window.session.current
    window.decide(DISAGREE)
    qtbot.waitUntil(lambda: getattr(window.session.row(key).decision, "id", 0) > 0)
    window.set_filter("ai_positive")
    assert window.filter_combo.currentData() == "ai_positive"

    with qtbot.waitSignal(window.screening_finished, timeout=TIMEOUT_MS):
        window.open_study(studies["b"])
    assert window.session.filter == "all" and window.filter_combo.currentData() == "all"
    assert window.results_model.rowCount() == 5 and window.session.queue_kind is None

    sub = Path(key).parent  # the decided image's own folder, opened on its own
    with qtbot.waitSignal(window.screening_finished, timeout=TIMEOUT_MS):
        window.open_study(sub)
    decision = window.session.row(key).decision
    assert decision.decision == DISAGREE and decision.reader == "Dr Reader"
    assert text_at(window, key, COL_READER).startswith("Disagree") and "Dr Reader" in text_at(window, key, COL_READER)


def _label_fits(label: QLabel) -> bool:
    width = label.contentsRect().width()
    font = label.font()
    font.setBold("<b>" in label.text())
    metrics = QFontMetrics(font)
    text = re.sub(r"<[^>]+>", "", re.sub(r"<br\s*/?>", "\n", label.text()))
    if label.wordWrap():
        # Words break at spaces and at zero-width spaces (file names may wrap after / _ - .).
        words_fit = all(metrics.horizontalAdvance(word) <= width for word in re.split(r"[\s\u200b]+", text) if word)
        return words_fit and label.heightForWidth(label.width()) <= label.height() + 1
    return all(metrics.horizontalAdvance(line) <= width for line in text.splitlines())


def test_layout_fits_1280x800_with_no_clipped_text_and_keyboard_moves_between_panes(qtbot, home, studies,
                                                                                    store_path):
    window = open_window(qtbot, studies["a"], store_path, reader="Dr Reader with a long name")
    assert window.minimumSizeHint().width() <= 1280 and window.minimumSizeHint().height() <= 800
    window.set_threshold(0.0)
    window.open_queue(NEEDS_REVIEW)  # at 0: the false positives, i.e. the normal images
    window.decide(DISAGREE)
    window.decide(DISAGREE)
    window.undo_decision()  # an "[undone]" entry in the second image's history
    second = window.session.current
    window.set_threshold(0.999)  # the first call changes: "(AI now NORMAL)" lengthens the reader column
    window.close_queue()
    window.session.go_to(second)
    qtbot.waitUntil(lambda: any(line.startswith("[undone]") for line in window.details.history_lines))
    window.refresh()
    qtbot.wait(100)  # let the layouts settle (they run on posted events)
    assert window.width() <= 1280 and window.height() <= 800

    labels = [window.reading_bar.queue_label, window.reading_bar.cue, window.details.history,
              window.status.counts_label, window.viewer.legend_text, window.sign_off_box.state,
              *window.confusion.grid_labels, *window.details.fields.values()]
    clipped = [label.text() for label in labels if label.isVisible() and not _label_fits(label)]
    assert clipped == []
    assert any("[undone]" in line for line in window.details.history_lines)
    for button in window.confusion.cell_buttons.values():  # "False / negatives / 3" fits its button
        metrics = button.fontMetrics()
        assert all(metrics.horizontalAdvance(line) <= button.contentsRect().width() - 4
                   for line in button.text().splitlines()), button.text()
    # Table: fixed column widths (issue 19 item 8); a file name or reader text that does not
    # fit is elided and whole in its tooltip (the full path for files).
    metrics = window.table.fontMetrics()
    model = window.results_model
    for row in range(model.rowCount()):
        for column in (COL_FILE, COL_READER):
            index = model.index(row, column)
            text = index.data() or ""
            if window.table.columnWidth(column) < metrics.horizontalAdvance(text):
                assert text in (index.data(Qt.ItemDataRole.ToolTipRole) or ""), text
    # Keyboard: Tab leaves the table for the viewer; F6 walks the panes.
    focus(qtbot, window, window.table)
    qtbot.keyClick(window.table, Qt.Key.Key_Tab)
    assert QApplication.focusWidget() is window.viewer.view
    window.focus_pane(+1)
    assert QApplication.focusWidget() is window.confusion.review_button
    window.focus_pane(+1)
    assert QApplication.focusWidget() is window.model_combo
    window.focus_pane(+1)
    assert QApplication.focusWidget() is window.table
    sheet = window.show_shortcuts()
    assert sheet.isVisible() and sheet.table.rowCount() >= 10
    assert any(sheet.table.item(r, 0).text() == "A" for r in range(sheet.table.rowCount()))
    sheet.close()


def test_patient_study_and_view_grouping_with_a_study_level_result(qtbot, home, studies, store_path):
    window = open_window(qtbot, studies["b"], store_path)
    model, session = window.results_model, window.session
    keys = [model.key_at(r) for r in range(model.rowCount())]
    names = [Path(k).name for k in keys]
    patients = [text_at(window, k, COL_PATIENT) for k in keys]
    # One patient's films together, PA before lateral; natural file order within a patient.
    # A folder alone never makes a patient: each film in anna/ is its own (issue 19, item 4).
    assert patients == ["anna/film0", "anna/film1", "P1", "P1", "P2"]  # natural, case-blind order
    assert names[:2] == ["film0.jpeg", "film1.jpeg"] and names[2:4] == ["img2.dcm", "img10.dcm"]
    assert [text_at(window, k, COL_VIEW) for k in keys[2:]] == ["PA", "LL", "AP"]
    keys = keys[2:4]
    p1 = [session.row(k) for k in keys]
    # The lateral film is outside the model's scope: the study-level call rests on the PA film.
    assert p1[1].scope == "lateral view" and session.ai_call(p1[1]) == OUT_OF_SCOPE
    top = p1[0].probability
    study_call = text_at(window, keys[0], COL_STUDY_CALL)
    assert study_call == text_at(window, keys[1], COL_STUDY_CALL)
    window.set_threshold(top)  # exactly the higher film's probability: the study is positive
    # The lateral film is out of scope: left out of the study call, and said so.
    assert text_at(window, keys[0], COL_STUDY_CALL) == f"{POSITIVE} ({top:.2f}, 1 img, 1 left out)"
    window.set_threshold(min(0.999, top + 1e-3))
    assert text_at(window, keys[0], COL_STUDY_CALL).startswith(NEGATIVE)
    # Sorting by file name is natural (img2 before img10) and by patient again on the patient header.
    window.results_model.sort(COL_FILE)
    window.refresh()
    names = [Path(model.key_at(r)).name for r in range(model.rowCount())]
    assert names.index("img2.dcm") < names.index("img10.dcm") and names.index("img1.dcm") == 2


def test_invert_window_presets_in_file_values_and_the_faint_normal_heatmap(qtbot, tmp_path):
    path = write_dicom(source_images("NORMAL", 1)[0], tmp_path / "twelve.dcm", "P9", "1.2.3", "PA", bits=12)
    cam = np.zeros((7, 7), np.float32)
    cam[2:5, 2:5] = 0.6  # absolute evidence: drawn as is, never stretched to this map's maximum
    view_image = load_view_image(str(path), cam)
    assert view_image.value_range == (0.0, 4095.0)
    panel = ViewerPanel(heatmap_visible=True, opacity=0.6)
    qtbot.addWidget(panel)
    panel.resize(600, 600)
    panel.show()
    view = panel.view
    view.show_image(view_image)
    assert panel.window_label.text() == "W 4095  L 2048"  # the file's own 12-bit values
    panel.apply_preset(2)  # Lung: a low, narrower window on this image's values
    center, width = view.window
    assert width < 1.0 and center < 0.5
    numbers = [int(n) for n in re.findall(r"\d+", panel.window_label.text())]
    assert numbers == [round(width * 4095), round(center * 4095)]
    # Invert: the same window, dark and bright swapped.
    before = view._base.pixmap().toImage().pixelColor(64, 64).value()
    panel.toggle_invert()
    assert view.inverted and view.window == (center, width)
    assert view._base.pixmap().toImage().pixelColor(64, 64).value() == pytest.approx(255 - before, abs=2)
    # The heatmap keeps the cam's absolute level (alpha 0.6 * 255 at the centre).
    assert view_image.heatmap.pixelColor(64, 64).alpha() == pytest.approx(153, abs=3)

    # An AI-normal image: the overlay starts hidden; H shows it, faintly.
    panel._ai_normal, panel._revealed = True, False
    panel._apply_heatmap()
    assert view.has_heatmap and not view.heatmap_shown
    panel.toggle_heatmap()
    assert view.heatmap_shown and view._heat.opacity() == pytest.approx(0.3)
    legend = panel.legend_text.text()
    assert "one scale for every image" in legend.lower()
    assert legend.startswith("Red: evidence as strong as in a typical confident pneumonia (scaled by this image's "
                             "probability)")
    assert not hasattr(panel, "fine_box")  # the Fine map was removed (issue 21: no anatomical meaning)


def test_sign_off_asks_is_read_only_until_amended_and_is_kept_per_study(qtbot, home, studies, store_path,
                                                                         monkeypatch, tmp_path):
    """Issue 19, item 3: sign-off shows what is undecided and asks; a signed-off study refuses
    decisions (keys and buttons), undo and Screen again, saying why, until Amend (recorded)."""
    from desktop import reading_actions

    questions, answers = [], []
    monkeypatch.setattr(reading_actions, "ask",
                        lambda window, title, text, on_answer: questions.append(text) or on_answer(answers.pop(0)))
    monkeypatch.setattr(reading_actions, "ask_reason",
                        lambda window, title, text, on_reason: on_reason("late lateral finding"))
    window = open_window(qtbot, studies["b"], store_path)
    window.toggle_sign_off()
    assert "reader" in window.messages[-1] and window.session.signed_off is None and not questions
    window.set_reader_name("Dr Reader")
    answers.append(False)  # the reader reads what is open and declines
    window.toggle_sign_off()
    assert "images that need review are undecided" in questions[-1]
    assert "out-of-scope images are neither confirmed nor screened anyway" in questions[-1]
    assert window.session.signed_off is None
    window.set_threshold(0.42)  # signed at a threshold of the reader's choosing
    answers.append(True)
    window.toggle_sign_off()
    qtbot.waitUntil(lambda: window.session.signed_off is not None)
    window.refresh()
    signed = window.session.signed_off
    assert signed.threshold == pytest.approx(window.session.threshold) and signed.counts["total"] == 5
    assert signed.model == LABEL
    assert window.sign_off_box.state.text().startswith("Signed off by Dr Reader")
    assert window.sign_off_box.button.text() == "Amend…"

    # Read-only: the D key, the buttons and Screen again refuse, and say why.
    window.open_queue(NEEDS_REVIEW)
    current = window.session.current
    window.viewer.view.setFocus()
    qtbot.keyClick(window.viewer.view, Qt.Key.Key_D)
    assert window.session.row(current).decision is None
    assert "signed off" in window.statusBar().currentMessage()
    assert not window.reading_bar.buttons[DISAGREE].isEnabled()
    assert "signed off" in window.reading_bar.buttons[DISAGREE].toolTip()
    assert window.reading_bar.cue.text().startswith("Decision keys locked")
    window.start_screening(use_stored=False)
    assert window.messages[-1].startswith("Cannot screen again: the study is signed off")
    window.threshold_control.set_value(0.9)  # the signed calls are not re-labelled
    assert window.session.threshold == pytest.approx(0.42) and window.threshold_control.value() == pytest.approx(0.42)
    assert window.statusBar().currentMessage().startswith("Threshold not changed: the study is signed off")
    window.close()

    again = open_window(qtbot, studies["b"], store_path)
    qtbot.waitUntil(lambda: again.session.signed_off is not None)
    again.refresh()
    assert again.session.signed_off.reader == "Dr Reader" and again.session.signed_off.images == 5
    assert again.session.threshold == pytest.approx(0.42) and again.threshold_control.value() == pytest.approx(0.42)
    assert AppSettings().reader_name == "Dr Reader"  # the settings keep the reader
    again.toggle_sign_off()  # amend: asks why, records it
    qtbot.waitUntil(lambda: again.session.signed_off is None)
    amendment = again.session.record.amendments[-1]
    assert (amendment.reader, amendment.reason) == ("Dr Reader", "late lateral finding")
    again.refresh()
    assert "Amended by Dr Reader" in again.sign_off_box.state.text()
    again.open_queue(NEEDS_REVIEW)
    again.viewer.view.setFocus()
    current = again.session.current
    qtbot.keyClick(again.viewer.view, Qt.Key.Key_U)
    assert again.session.row(current).decision is not None  # writable again
    csv_path = tmp_path / "amended.csv"
    with qtbot.waitSignal(again.exported, timeout=60_000):
        again.export_csv(str(csv_path))
    import csv
    record = next(csv.DictReader(csv_path.open()))
    assert "Amended by Dr Reader" in record["amended"] and "late lateral finding" in record["amended"]
    with qtbot.waitSignal(again.screening_finished, timeout=TIMEOUT_MS):
        again.open_study(studies["a"])
    assert again.session.signed_off is None  # per study


def _pdf_text(data: bytes) -> bytes:
    """The PDF's content streams, inflated where compressed (no PDF library needed)."""
    chunks = [data]
    for match in re.finditer(rb"stream\r?\n(.*?)endstream", data, re.S):
        try:
            chunks.append(zlib.decompress(match.group(1)))
        except zlib.error:
            pass
    return b"\n".join(chunks)


def test_pdf_report_puts_false_negatives_disagreements_and_changed_calls_first(qtbot, home, studies, store_path,
                                                                              tmp_path):
    window = open_window(qtbot, studies["a"], store_path, reader="Dr Reader")
    session = window.session
    readable = [r for r in session.rows() if r.probability is not None]
    positives = [r for r in readable if r.truth == POSITIVE]
    window.set_threshold(0.001)  # everything AI positive: the normal images are false positives
    window.open_queue(NEEDS_REVIEW)
    normal = next(r for r in readable if r.truth == NEGATIVE)
    session.go_to(normal.key)
    window.decide(AGREE)  # agreed with PNEUMONIA ...
    qtbot.waitUntil(lambda: getattr(session.row(normal.key).decision, "id", 0) > 0)
    window.set_threshold(min(0.999, max(r.probability for r in readable) + 1e-3))  # ... now NORMAL; FNs
    assert session.is_changed_call(session.row(normal.key))
    qtbot.waitUntil(lambda: all(window.results_model.thumbnail(r.key) is not None for r in readable),
                    timeout=30_000)
    pdf = tmp_path / "report.pdf"
    with qtbot.waitSignal(window.exported, timeout=60_000):
        window.export_pdf(str(pdf))
    data = pdf.read_bytes()
    assert data[:5] == b"%PDF-"
    text = _pdf_text(data)
    assert text.index(b"False negatives \\(") < text.index(b"AI call changed since the reader decided")
    assert b"Page 1 of " in text
    for row in positives:
        assert Path(row.file).name.encode() in text  # every false negative, by file name
    assert b"patient " in text and b"Dr Reader" in text and LABEL.encode() in text
    assert b"/Subtype /Image" in data  # thumbnails
    for folder in (str(studies["a"]), str(studies["a"].parent), str(Path.home())):
        assert folder.encode() not in text  # no local paths, file names only


def test_out_of_scope_queue_screen_anyway_persists_and_undoes(qtbot, home, studies, store_path, tmp_path):
    from desktop.results_model import COL_AI_CALL, COL_STATUS

    window = open_window(qtbot, studies["b"], store_path, reader="Dr Reader")
    session = window.session
    window.open_queue(OUT_OF_SCOPE_QUEUE)
    model = window.results_model
    keys = [model.key_at(r) for r in range(model.rowCount())]
    assert [Path(k).name for k in keys] == ["img10.dcm"]  # the lateral film only
    lateral = keys[0]
    assert session.current == lateral
    assert text_at(window, lateral, COL_AI_CALL) == OUT_OF_SCOPE  # no NORMAL/PNEUMONIA call
    assert text_at(window, lateral, COL_STATUS) == "Out of scope: lateral view"
    assert window.details.fields["Status"].text() == "Out of scope: lateral view"
    assert window.details.fields["AI call"].text() == OUT_OF_SCOPE
    assert session.row(lateral).probability is not None  # the probability is kept
    button = window.details.screen_anyway_button
    assert button.isVisibleTo(window)

    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    call = POSITIVE if session.row(lateral).probability >= session.threshold else NEGATIVE
    marked = f"{call} (screened anyway: lateral view)"
    window.refresh()
    assert text_at(window, lateral, COL_AI_CALL) == marked
    assert window.details.fields["AI call"].text() == marked and not button.isVisibleTo(window)
    assert session.row(lateral).decision is None  # not an agree/disagree
    window.undo_decision()
    window.refresh()
    assert text_at(window, lateral, COL_AI_CALL) == OUT_OF_SCOPE and button.isVisibleTo(window)

    window.screen_anyway_action.trigger()  # the menu action does the same
    qtbot.waitUntil(lambda: getattr(session.row(lateral).override, "id", 0) > 0)
    qtbot.waitUntil(lambda: "Screened anyway by Dr Reader" in window.details.history.text())
    csv_path = tmp_path / "export.csv"
    with qtbot.waitSignal(window.exported, timeout=60_000):
        window.export_csv(str(csv_path))
    import csv
    rows = {Path(r["file"]).name: r for r in csv.DictReader(csv_path.open())}
    assert rows["img10.dcm"]["ai_call"] == call
    assert rows["img10.dcm"]["screened_anyway"] == "(screened anyway: lateral view)"
    from core.reading.report import report_rows
    from core.reading.report_pdf import entry_lines
    exported = next(r for r in report_rows(session) if r.path == lateral)
    assert f"AI {call} (p={exported.probability:.3f}) (screened anyway: lateral view)" in entry_lines(exported)
    window.close()

    again = open_window(qtbot, studies["b"], store_path)
    qtbot.waitUntil(lambda: again.session.row(lateral).override is not None)
    again.refresh()
    assert text_at(again, lateral, COL_AI_CALL) == marked


def test_withheld_out_of_scope_rows_refuse_agree_and_take_confirm_or_screen_anyway(qtbot, home, studies,
                                                                                     store_path):
    """Issue 19, item 1, driven by keys and buttons: A/D/U refuse on a withheld row (saying why);
    Confirm out of scope is recorded as its own kind; after Screen anyway, A decides on the call shown."""
    from core.reading.records import CONFIRM_OUT_OF_SCOPE

    window = open_window(qtbot, studies["b"], store_path, reader="Dr Reader")
    session, view, bar = window.session, window.viewer.view, window.reading_bar
    window.open_queue(OUT_OF_SCOPE_QUEUE)
    lateral = session.current
    assert Path(lateral).name == "img10.dcm" and session.row(lateral).withheld
    window.refresh()
    focus(qtbot, window, view)
    for key in (Qt.Key.Key_A, Qt.Key.Key_D, Qt.Key.Key_U):
        qtbot.keyClick(view, key)
        assert session.row(lateral).decision is None
        assert "out of scope (lateral view)" in window.statusBar().currentMessage()
    for name in (AGREE, DISAGREE):
        assert not bar.buttons[name].isEnabled() and "Confirm out of scope" in bar.buttons[name].toolTip()
    confirm = window.details.confirm_button
    assert confirm.isVisibleTo(window) and confirm.isEnabled()
    qtbot.mouseClick(confirm, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: getattr(session.row(lateral).decision, "id", 0) > 0)
    assert session.row(lateral).decision.decision == CONFIRM_OUT_OF_SCOPE
    assert session.row(lateral).decision.reader_label is None
    session.go_to(lateral)
    window.refresh()
    assert "Confirmed out of scope: lateral view" in window.details.fields["Reader"].text()
    focus(qtbot, window, view)
    qtbot.keyClick(view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # undo the confirmation
    assert session.row(lateral).decision is None
    qtbot.mouseClick(window.details.screen_anyway_button, Qt.MouseButton.LeftButton)
    assert session.current == lateral and not session.row(lateral).withheld
    window.refresh()
    assert bar.buttons[AGREE].isEnabled()
    focus(qtbot, window, view)
    qtbot.keyClick(view, Qt.Key.Key_A)
    decision = session.row(lateral).decision
    assert decision.decision == AGREE and decision.ai_call in (POSITIVE, NEGATIVE)  # the call shown


def test_matrix_queues_and_totals_add_up_after_every_kind_of_action(qtbot, home, studies, store_path):
    """Issue 19, item 7: what the window shows adds up to the files of the study after decide,
    undo, screen anyway, confirm out of scope, a threshold move and a rescreen."""
    window = open_window(qtbot, studies["a"], store_path, reader="Dr Reader")
    session = window.session
    flagged = next((r.key for r in session.rows() if r.scope), None)

    def check(step):
        window.refresh()
        counts = session.counts()
        total = len(session)
        shown = {cell: int(button.text().split("\n")[-1]) for cell, button in window.confusion.cell_buttons.items()}
        assert shown == counts["cells"], step
        scope_text = window.confusion.scope_button.text()
        assert scope_text == f"Out of scope ({counts['out_of_scope']})", step
        assert (sum(shown.values()) + counts["out_of_scope"] + counts["errors"] + counts["unscreened"]
                + counts["unlabelled"]) == total, step
        window.set_filter("all")
        assert window.results_model.rowCount() == total, step

    check("opened")
    window.open_queue(NEEDS_REVIEW)
    focus(qtbot, window, window.viewer.view)
    qtbot.keyClick(window.viewer.view, Qt.Key.Key_D)
    check("decide")
    window.undo_decision()
    check("undo")
    if flagged is None:  # make one: the scope result of a film, as a flagged film would carry it
        flagged = next(r.key for r in session.rows() if r.probability is not None)
        session.row(flagged).result.scope = "not a chest X-ray"
        session.add_results([session.row(flagged).result])
    check("flagged")
    session.go_to(flagged)
    window.screen_anyway()
    check("screen anyway")
    window.undo_decision()
    check("undo screen anyway")
    session.go_to(flagged)
    window.confirm_out_of_scope()
    check("confirm out of scope")
    window.set_threshold(0.2)
    check("threshold")
    with qtbot.waitSignal(window.screening_finished, timeout=TIMEOUT_MS):
        window.start_screening(use_stored=False)
    check("rescreen")


def test_switching_study_disables_decisions_the_cue_and_undo_say_what_is_true(qtbot, home, studies, store_path):
    """Issue 19, smaller: Agree/Disagree off after switching study; the banner does not ask to open
    a queue while one is open; Ctrl+Z with nothing to undo says so."""
    from desktop.reading_bar import CUE_OFF, CUE_OFF_IN_QUEUE

    window = open_window(qtbot, studies["a"], store_path)
    bar = window.reading_bar
    focus(qtbot, window, window.viewer.view)
    qtbot.keyClick(window.viewer.view, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert window.statusBar().currentMessage() == "Nothing to undo"
    window.open_queue(NEEDS_REVIEW)
    assert bar.buttons[AGREE].isEnabled()
    focus(qtbot, window, window.threshold_control.spin)
    assert bar.cue.text() == CUE_OFF_IN_QUEUE and "open a queue" not in bar.cue.text()
    with qtbot.waitSignal(window.screening_finished, timeout=TIMEOUT_MS):
        window.open_study(studies["b"])
    window.refresh()
    assert window.session.queue_kind is None
    assert not bar.buttons[AGREE].isEnabled() and not bar.buttons[DISAGREE].isEnabled()
    assert bar.cue.text() == CUE_OFF


def test_the_sign_off_question_is_answered_without_a_modal_loop(qtbot, home, studies, store_path):
    """The sign-off question is a window-modal box opened with open(): the GUI keeps running and
    the answer arrives by a callback (here: Yes, clicked)."""
    from PySide6.QtWidgets import QMessageBox

    window = open_window(qtbot, studies["b"], store_path, reader="Dr Reader")
    window.quiet = False  # the real dialog
    window.toggle_sign_off()
    box = next(w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible())
    assert "Still open" in box.text() and window.session.signed_off is None  # asked, not yet signed
    box.button(QMessageBox.StandardButton.Yes).click()
    qtbot.waitUntil(lambda: window.session.signed_off is not None)
    window.quiet = True


def test_results_stored_before_their_provenance_was_recorded_are_kept_and_said(qtbot, home, studies, store_path):
    import sqlite3

    from core.screening.results import NOT_RECORDED

    conn = sqlite3.connect(store_path)  # as a database upgraded from 0.4.1 holds them
    conn.execute("UPDATE results SET software_version = NULL, film_preparation = NULL")
    conn.commit()
    conn.close()
    window = open_window(qtbot, studies["a"], store_path)
    summary = window.last_summary
    assert summary["earlier_preparation"] == summary["from_store"] > 0  # reused, not replaced
    assert "made by an earlier PneumoScan" in window.statusBar().currentMessage()
    assert window.session.current is not None  # the first image is shown
    assert NOT_RECORDED in window.details.fields["Model"].text()
    assert NOT_RECORDED in window.details.fields["Model"].toolTip()
