"""The PneumoScan main window: a view over a core.session.ReadingSession, plus wiring.

The session owns the reading state (rows, threshold, filter, queue, cursor,
decisions, undo, sign-off); this window builds the panes (desktop.window_actions,
results table, desktop.viewer, desktop.reading_bar, desktop.review_panel,
desktop.status_panel), forwards the reader's input to the session and redraws
on its change events. Studies are screened by desktop.study_job on a superqt
worker; decisions are written by the store worker. The GUI thread never waits.
"""
from __future__ import annotations

import threading
from pathlib import Path

from PySide6.QtCore import QObject, QSize, Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import (QAbstractItemView, QApplication, QComboBox, QFileDialog, QHBoxLayout, QHeaderView,
                               QInputDialog, QLabel, QMainWindow, QMessageBox, QSplitter, QTableView, QVBoxLayout,
                               QWidget)
from superqt.utils import create_worker

from core.session import FILTER_QUEUE, FILTERS, QUEUE_TITLES, ReadingSession
from desktop import study_job as job_events
from desktop.reading_bar import ReadingBar
from desktop.reading_keys import ReadingKeys
from desktop.results_model import COL_THUMBNAIL, ResultsTableModel
from desktop.review_panel import ReviewPanel
from desktop.session_bridge import SessionSignals
from desktop.settings import AppSettings
from desktop.status_panel import RESEARCH_NOTICE, ScreeningStatus
from desktop.viewer import ViewerPanel
from desktop.window_actions import build_actions, build_toolbar
from desktop.workers import THUMBNAIL_SIZE, StoreWorker, readable, run_in_pool, start_worker

__all__ = ["MainWindow", "RESEARCH_NOTICE"]
ABOUT_TEXT = (
    "<h3>PneumoScan</h3><p>Screens chest X-rays for pneumonia with a convolutional network and shows "
    "Grad-CAM heatmaps of the evidence it used.</p>"
    f"<p><b>{RESEARCH_NOTICE}.</b> PneumoScan is not a medical device; every AI call "
    "must be read by a qualified radiologist.</p>")
FIRST_RUN_TEXT = (
    f"<p><b>{RESEARCH_NOTICE}.</b></p><p>PneumoScan is a research tool, not a medical device. Its AI calls "
    "and heatmaps are aids for a qualified reader and must never be used on their own for a diagnosis.</p>")
_REFRESH_DELAY_MS = 80  # coalesce redraws while results stream in


class _JobRelay(QObject):
    """Delivers one study job's reports to the window until it is discarded."""

    def __init__(self, window: "MainWindow"):
        super().__init__(window)
        self.window, self.discarded = window, False

    @Slot(object)
    def on_yield(self, event) -> None:
        if not self.discarded:
            self.window.on_job_event(*event)

    @Slot(object)
    def on_return(self, summary) -> None:
        if not self.discarded:
            self.window.on_job_done(summary)

    @Slot(object)
    def on_error(self, exc) -> None:
        if not self.discarded:
            self.window.on_job_failed(readable(exc))


class MainWindow(QMainWindow):
    screening_finished = Signal(dict)  # the run summary (also used by --smoke-test)
    screening_failed = Signal(str)
    study_opened = Signal(str)
    exported = Signal(str)  # path of a finished export

    def __init__(self, settings: AppSettings | None = None, store_path=None, quiet: bool = False):
        super().__init__()
        self.settings = settings or AppSettings()
        self.store_path = store_path  # None: the user's results store
        self.quiet = quiet  # no dialogs (smoke test): messages go to the status bar
        self.messages: list[str] = []
        self.model_entries: list = []
        self.study = None  # desktop.study.StudyFiles of the open study
        self.study_folder: Path | None = None
        self.device, self.last_summary = "", None
        self._pending_study: str | None = None
        self._wanted_model: str | None = None  # "name vN" asked for by select_model()
        self._relay: _JobRelay | None = None
        self._cancel: threading.Event | None = None
        self._screening = False
        self.setWindowTitle("PneumoScan")
        self.store = StoreWorker(store_path, self)
        self.session = ReadingSession(submit=self.store.session_submit, reader=self.settings.reader_name)
        self.signals = SessionSignals(self.session, self)
        self.results_model = ResultsTableModel(self.session, self)
        build_actions(self)
        build_toolbar(self)
        self._build_central()
        self.status = ScreeningStatus(self.statusBar())
        self.device_label, self.research_label = self.status.device_label, self.status.research_label
        self.keys = ReadingKeys(self, [self.table, self.viewer.view])
        self.keys.cue_changed.connect(self.reading_bar.set_cue)
        self._refresh_timer = QTimer(self, singleShot=True, interval=_REFRESH_DELAY_MS)
        self._refresh_timer.timeout.connect(self.refresh)
        for signal in (self.signals.rowsChanged, self.signals.thresholdChanged, self.signals.filterChanged,
                       self.signals.decisionChanged, self.signals.signOffChanged):
            signal.connect(self.schedule_refresh)
        self.signals.queueChanged.connect(self._on_queue_changed)
        self.signals.cursorChanged.connect(self._on_cursor)
        self.signals.decisionChanged.connect(self._on_decision)
        self._restore_layout()
        self._set_running(False)
        self.refresh()
        app = QApplication.instance()
        if app is not None:  # quitting without closing the window (e.g. a signal) still stops work
            app.aboutToQuit.connect(self.shutdown)

    # -- construction --------------------------------------------------------

    def _build_central(self) -> None:
        left = QWidget(self)
        filter_row = QHBoxLayout()
        filter_row.addWidget(QLabel("Show:", left))
        self.filter_combo = QComboBox(left)
        self.filter_combo.setObjectName("filterCombo")
        self.filter_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.filter_combo.activated.connect(lambda i: self.set_filter(self.filter_combo.itemData(i)))
        filter_row.addWidget(self.filter_combo, 1)
        self.table = QTableView(left)
        self.table.setObjectName("resultsTable")
        self.table.setModel(self.results_model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setTabKeyNavigation(False)  # Tab leaves the table for the next pane
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.setIconSize(QSize(THUMBNAIL_SIZE, THUMBNAIL_SIZE))
        self.table.verticalHeader().setDefaultSectionSize(THUMBNAIL_SIZE + 6)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)  # no clipped names
        header.setSectionResizeMode(COL_THUMBNAIL, QHeaderView.ResizeMode.Fixed)
        header.resizeSection(COL_THUMBNAIL, THUMBNAIL_SIZE + 8)
        header.setSortIndicatorShown(True)
        header.sectionClicked.connect(self._on_header_clicked)
        self.table.selectionModel().currentRowChanged.connect(self._on_table_row)
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addLayout(filter_row)
        left_layout.addWidget(self.table, 1)

        centre = QWidget(self)
        self.reading_bar = ReadingBar(centre)
        self.reading_bar.previous_requested.connect(self.previous_image)
        self.reading_bar.next_requested.connect(self.next_image)
        self.reading_bar.decision_requested.connect(self.decide)
        self.reading_bar.close_queue_requested.connect(self.close_queue)
        self.viewer = ViewerPanel(self.settings.heatmap_visible, self.settings.heatmap_opacity, centre)
        self.viewer.heatmap_toggled.connect(lambda on: setattr(self.settings, "heatmap_visible", on))
        self.viewer.opacity_changed.connect(lambda value: setattr(self.settings, "heatmap_opacity", value))
        centre_layout = QVBoxLayout(centre)
        centre_layout.setContentsMargins(0, 0, 0, 0)
        centre_layout.addWidget(self.reading_bar)
        centre_layout.addWidget(self.viewer, 1)

        self.review = ReviewPanel(self)
        self.confusion, self.details, self.sign_off_box = self.review.confusion, self.review.details, \
            self.review.sign_off
        self.confusion.queue_requested.connect(self.open_queue)
        self.sign_off_box.sign_off_requested.connect(self.toggle_sign_off)
        self.sign_off_box.reopen_requested.connect(self.toggle_sign_off)
        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.setObjectName("mainSplitter")
        for widget in (left, centre, self.review):
            self.splitter.addWidget(widget)
        self.splitter.setStretchFactor(1, 1)
        self.setCentralWidget(self.splitter)
        # Tab order across panes: toolbar -> table -> viewer -> review panel.
        chain = [self.model_combo, self.threshold_control.spin, self.filter_combo, self.table, self.viewer.view,
                 self.confusion.review_button]
        for first, second in zip(chain, chain[1:]):
            QWidget.setTabOrder(first, second)

    def _restore_layout(self) -> None:
        geometry, state = self.settings.geometry, self.settings.splitter_state
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1280, 760)  # fits a 1280x800 screen
        if state is not None:
            self.splitter.restoreState(state)
        else:
            self.splitter.setSizes([470, 500, 310])

    # -- messages ------------------------------------------------------------

    def notify(self, title: str, text: str, icon=QMessageBox.Icon.Warning) -> None:
        """Tell the reader something; never blocks (no nested event loop)."""
        self.messages.append(f"{title}: {text}")
        self.statusBar().showMessage(f"{title}: {text}", 15_000)
        if not self.quiet:
            box = QMessageBox(icon, title, text, QMessageBox.StandardButton.Ok, self)
            box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            box.open()

    def show_about(self) -> None:
        self.notify("About PneumoScan", ABOUT_TEXT, QMessageBox.Icon.Information)

    def show_shortcuts(self):
        from desktop.shortcuts import ShortcutSheet

        sheet = ShortcutSheet(self)
        sheet.show()
        return sheet

    def show_first_run_notice(self) -> QMessageBox | None:
        """The once-per-user research-use notice (callers skip it in tests and smoke runs)."""
        if not self.settings.research_notice_due(suppressed=self.quiet):
            return None
        box = QMessageBox(QMessageBox.Icon.Information, "PneumoScan: research use only", FIRST_RUN_TEXT,
                          QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        self.settings.mark_research_notice_seen()
        return box

    # -- models (desktop.model_choice) -----------------------------------------

    def start(self, folder=None) -> None:
        """After show(): list the models (on a worker), then open `folder`."""
        self._pending_study = str(folder) if folder else None
        self.refresh_models()

    def refresh_models(self) -> None:
        from desktop.model_choice import list_entries

        run_in_pool(list_entries, on_done=self._models_listed,
                    on_error=lambda message: self._models_listed(([], None), message))

    def _models_listed(self, listing, error: str | None = None) -> None:
        from desktop.model_choice import fill_combo, pick_entry

        entries, default = listing
        previous = self.current_entry
        self.model_entries = list(entries)
        fill_combo(self.model_combo, self.model_entries)
        if not self.model_entries:
            self.notify("No model", error or "No screening model is installed. Train one with Train….")
        wanted, self._wanted_model = self._wanted_model, None
        chosen = pick_entry(self.model_entries, wanted, previous, self.settings.model_name, default)
        if chosen is not None:
            self.model_combo.setCurrentIndex(self.model_entries.index(chosen))
            if previous is None or previous.card.sha256 != chosen.card.sha256:
                self.set_threshold(chosen.card.threshold)
                if previous is not None and self.study_folder is not None and not self._pending_study:
                    self.open_study(self.study_folder)  # other model: other stored results
        if self._pending_study:
            folder, self._pending_study = self._pending_study, None
            self.open_study(folder)

    def select_model(self, label: str) -> None:
        """Make model `label` ("name vN") the active one, e.g. one the training wizard just saved."""
        self.settings.model_name = label
        self._wanted_model = label
        self.refresh_models()

    @property
    def current_entry(self):
        index = self.model_combo.currentIndex() if hasattr(self, "model_combo") else -1
        return self.model_entries[index] if 0 <= index < len(self.model_entries) else None

    def on_model_chosen(self, _index: int) -> None:
        entry = self.current_entry
        if entry is not None:
            self.settings.model_name = entry.card.label
            self.set_threshold(entry.card.threshold)
            if self.study_folder is not None:
                self.open_study(self.study_folder)  # other model: other stored results

    # -- study and screening -------------------------------------------------

    def choose_study(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a study folder", str(self.study_folder or Path.home()))
        if folder:
            self.open_study(folder)

    def open_study(self, folder) -> None:
        """Show a study: stored results at once, then screen what is missing (never waits)."""
        self._stop_job()
        folder = Path(folder).expanduser()
        if not folder.is_dir():
            self.notify("Study not found", f"The folder {folder} does not exist.")
            self.screening_failed.emit(f"study folder not found: {folder}")
            return
        self.study_folder, self.study = folder.resolve(), None
        self.session.model_label = self.current_entry.card.label if self.current_entry else ""
        self.session.open_study(self.study_folder)
        self.results_model.clear_thumbnails()
        self.viewer.forget()
        self.viewer.clear()
        self.details.clear()
        self.setWindowTitle(f"PneumoScan - {self.study_folder.name}")
        self.settings.last_study = str(self.study_folder)
        self.study_opened.emit(str(self.study_folder))
        self.start_screening()

    def start_screening(self, use_stored: bool = True) -> None:
        entry = self.current_entry
        if self.study_folder is None or entry is None:
            message = "Open a study folder first." if self.study_folder is None else "No screening model is installed."
            self.notify("Cannot screen", message)
            self.screening_failed.emit(message)
            return
        self._stop_job()
        request = job_events.StudyRequest(folder=str(self.study_folder), model_entry=entry,
                                          threshold=self.session.threshold, db_path=self.store_path,
                                          use_stored=use_stored)
        self._cancel = threading.Event()
        self._relay = relay = _JobRelay(self)
        worker = create_worker(job_events.study_job, request, self._cancel, _start_thread=False, _ignore_errors=True)
        worker.yielded.connect(relay.on_yield)
        worker.returned.connect(relay.on_return)
        worker.errored.connect(relay.on_error)
        self._set_running(True)
        self.statusBar().showMessage(f"Opening {self.study_folder.name}…")
        start_worker(worker)

    def cancel_screening(self) -> None:
        if self._screening and self._cancel is not None:
            self._cancel.set()  # the job stops at its next yield (within one batch)
            self.statusBar().showMessage("Cancelling…")

    def _stop_job(self) -> None:
        """Drop the running job without waiting: cancelled, its late reports ignored."""
        if self._relay is not None:
            self._relay.discarded = True
            self._relay.deleteLater()
            self._relay = None
        if self._cancel is not None:
            self._cancel.set()
        self._set_running(False)

    def _set_running(self, running: bool) -> None:
        self._screening = running
        self.run_action.setEnabled(not running)
        self.rescreen_action.setEnabled(not running)
        self.cancel_action.setEnabled(running)
        if not running:
            self.status.stopped()

    @property
    def is_screening(self) -> bool:
        return self._screening

    def on_job_event(self, event: str, payload) -> None:
        if event == job_events.SCANNED:
            self.study = payload
            self.session.open_study(payload.folder, payload.files, payload.truth)
            self.messages.extend(payload.warnings[:3])
            if not payload.files:
                self.statusBar().showMessage(f"No images found in {payload.folder}")
        elif event == job_events.DECISIONS:
            decisions, sign_off = payload
            self.session.set_decisions(decisions)
            self.session.set_signed_off(sign_off)
        elif event == job_events.PLAN:
            self.status.running(payload.total, len(payload.reuse))
            if payload.todo:
                self.statusBar().showMessage(f"Loading the model to screen {len(payload.todo)} images…")
        elif event == job_events.STORED:
            self.session.add_results(payload)
            self._show_first_image()
        elif event == job_events.STARTED:
            self.device = payload[1]
            self.status.set_device(self.device)
            self.statusBar().showMessage(f"Screening {payload[0]} images…")
        elif event == job_events.RESULT:
            result, thumbnail = payload
            key = self.session.add_results([result])[0]
            self.results_model.set_thumbnail(key, thumbnail)
            self._show_first_image()
        elif event == job_events.THUMBNAILS:
            for key, image in payload:
                self.results_model.set_thumbnail(str(Path(key)), image)

    def on_job_done(self, summary: dict) -> None:
        self._relay = None
        self.last_summary = summary
        self.device = summary.get("device") or self.device
        self.status.set_device(self.device or "- (all results were stored)")
        self._set_running(False)
        verb = "Cancelled" if summary.get("cancelled") else "Done"
        self.statusBar().showMessage(f"{verb}: {summary['screened']} screened now, {summary['from_store']} stored, "
                                     f"{summary['errors']} errors", 15_000)
        self.refresh()
        self.screening_finished.emit(summary)

    def on_job_failed(self, message: str) -> None:
        self._relay = None
        self._set_running(False)
        self.notify("Screening stopped", message)
        self.screening_failed.emit(message)

    # -- the session's state on screen ------------------------------------------

    @property
    def threshold(self) -> float:
        return self.session.threshold

    @Slot(float)
    def set_threshold(self, value: float) -> None:
        """Re-label everything at a new threshold; the model is not re-run."""
        self.session.set_threshold(value)
        self.threshold_control.set_value(self.session.threshold, emit=False)
        self.refresh()

    def set_filter(self, name: str) -> None:
        self.session.set_filter(name)
        self.refresh()

    def schedule_refresh(self, *_args) -> None:
        if not self._refresh_timer.isActive():
            self._refresh_timer.start()

    def refresh(self) -> None:
        """Table, counts, filters, queue text and the current image's details, from the session."""
        self._refresh_timer.stop()
        session = self.session
        self.results_model.refresh()
        self._select_current()
        counts = session.counts()
        self.confusion.set_counts(counts["cells"], session.truth_known, counts["needs_review"],
                                  counts["needs_review_left"], counts["unscreened"], counts["out_of_scope"])
        self.status.show_counts(counts, self._screening)
        self._fill_filter_combo(session.filter_counts())
        self.reading_bar.set_queue_text(session.queue_text())
        self.sign_off_box.show_sign_off(session.signed_off, session.reader)
        row = session.row(session.current)
        if row is not None:
            self.details.show_row(session, row)

    def _fill_filter_combo(self, counts: dict) -> None:
        combo = self.filter_combo
        combo.blockSignals(True)
        combo.clear()
        for name, text in FILTERS.items():
            combo.addItem(f"{text} ({counts[name]})", name)
        if self.session.queue_kind is not None:
            title = QUEUE_TITLES.get(self.session.queue_kind, "")
            combo.addItem(f"Queue: {title} ({len(self.session.queue)})", FILTER_QUEUE)
        combo.setCurrentIndex(max(0, combo.findData(self.session.filter)))
        combo.blockSignals(False)

    def _on_header_clicked(self, column: int) -> None:
        if column == COL_THUMBNAIL:
            return
        # File and probability sort by themselves; any other column groups by patient, study, view.
        self.results_model.sort(column, self.table.horizontalHeader().sortIndicatorOrder())

    # -- queue and navigation --------------------------------------------------

    @Slot(str)
    def open_queue(self, kind: str) -> None:
        """Open a queue: the table lists it, the viewer shows its first undecided image."""
        self.session.open_queue(kind)
        self.refresh()
        self.viewer.view.setFocus()  # review keys act on the viewer

    def close_queue(self) -> None:
        if self.session.queue_kind is not None:
            self.session.close_queue()
            self.refresh()

    def _on_queue_changed(self, kind) -> None:
        self.reading_bar.set_review(kind is not None)
        self.keys.update_cue()
        self.schedule_refresh()

    def next_image(self) -> None:
        if self.session.at_end and self.session.queue_kind is not None:
            self.statusBar().showMessage("End of the queue", 4000)
        self.session.next()

    def previous_image(self) -> None:
        self.session.previous()

    def show_image(self, key: str) -> None:
        self.session.go_to(key)

    def _show_first_image(self) -> None:
        if self.session.current is None:
            first = next((k for k in self.session.visible_keys() if self.session.row(k).probability is not None), None)
            if first is not None:
                self.session.go_to(first)

    def _on_cursor(self, key) -> None:
        """The one place an image is shown: table selection, viewer and details follow the session."""
        row = self.session.row(key)
        if row is None:
            self.viewer.clear()
            self.details.clear()
            return
        if self.results_model.row_number(key) is None:
            self.results_model.refresh()
        self._select_current()
        self.reading_bar.set_queue_text(self.session.queue_text())
        self.details.show_row(self.session, row)
        self._load_history(key)
        cam = row.result.cam if row.result is not None else None
        self.viewer.load(key, cam, row.file, ai_normal=self.session.ai_call(row) != "PNEUMONIA")

    def _select_current(self) -> None:
        number = self.results_model.row_number(self.session.current)
        model = self.table.selectionModel()
        if number is None:
            model.clearSelection()
        elif self.table.currentIndex().row() != number or not model.isRowSelected(number):
            index = self.results_model.index(number, 1)
            self.table.setCurrentIndex(index)
            self.table.scrollTo(index)

    def _on_table_row(self, current, _previous) -> None:
        key = self.results_model.key_at(current.row()) if current.isValid() else None
        if key is not None and key != self.session.current:
            self.session.go_to(key)

    def _load_history(self, key: str) -> None:
        def shown(history, key=key):
            if key == self.session.current:
                self.details.set_history(history)
        self.store.submit(lambda store: store.image_history(key), on_done=shown)

    def focus_pane(self, step: int) -> None:
        """F6 / Shift+F6: table, viewer, review panel, toolbar."""
        panes = [self.table, self.viewer.view, self.confusion.review_button, self.model_combo]
        focus = QApplication.focusWidget()
        current = next((i for i, pane in enumerate(panes) if focus is pane or pane.isAncestorOf(focus)), -1)
        panes[(current + step) % len(panes)].setFocus(Qt.FocusReason.OtherFocusReason)

    # -- decisions and sign-off -------------------------------------------------

    def decide(self, decision: str) -> None:
        """Record the reader's decision on the current image (review only), then move on."""
        if self.session.queue_kind is None:
            self.statusBar().showMessage("Open a queue (a matrix cell or Needs review) to record decisions", 5000)
            return
        if not self.session.decide(decision):
            self.statusBar().showMessage("Nothing to decide on: this image has no AI result", 4000)

    def undo_decision(self) -> None:
        if self.session.undo() is None:
            self.statusBar().showMessage("Nothing to undo", 3000)
        else:
            self.statusBar().showMessage("Decision undone", 3000)

    def _on_decision(self, key: str) -> None:
        if key == self.session.current:
            self._load_history(key)

    def ask_reader_name(self) -> None:
        dialog = QInputDialog(self)
        dialog.setWindowTitle("Reader name")
        dialog.setLabelText("Your name as the reader (recorded with decisions and sign-offs):")
        dialog.setTextValue(self.settings.reader_name)
        dialog.textValueSelected.connect(self.set_reader_name)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()

    def set_reader_name(self, name: str) -> None:
        self.settings.reader_name = name
        self.session.reader = name.strip()
        self.refresh()

    def toggle_sign_off(self) -> None:
        if self.session.signed_off is not None:
            self.session.reopen()
            return
        problem = self.session.sign_off()
        if problem:
            self.notify("Cannot sign off", problem)

    # -- export, training, shutdown ------------------------------------------------

    def export_csv(self, path: str | None = None) -> None:
        from desktop.window_export import export
        export(self, "csv", path)

    def export_pdf(self, path: str | None = None) -> None:
        from desktop.window_export import export
        export(self, "pdf", path)

    def _exported_to(self, path) -> None:
        self.statusBar().showMessage(f"Exported {path}", 10_000)
        self.exported.emit(str(path))

    def open_training_wizard(self) -> None:
        from desktop.wizard import open_training_wizard
        open_training_wizard(self)

    def open_model_manager(self) -> None:
        from desktop.model_manager import open_model_manager
        open_model_manager(self)

    def shutdown(self) -> None:
        """Cancel the running job (it ends on its own) and let queued decisions be written."""
        self._stop_job()
        self.store.close()

    def closeEvent(self, event) -> None:
        self.shutdown()
        self.settings.geometry = self.saveGeometry()
        self.settings.splitter_state = self.splitter.saveState()
        self.settings.sync()
        super().closeEvent(event)
