"""The PneumoScan main window: a view over a core.reading.session.ReadingSession, plus wiring.

The session owns the reading state (rows, threshold, filter, queue, cursor,
decisions, undo, sign-off); this window builds the panes (desktop.window_actions,
results table, desktop.viewer, desktop.reading_bar, desktop.review_panel,
desktop.status_panel), forwards the reader's input to the session and redraws
on its change events. Studies are screened by core.reading.study_job on a superqt
worker (desktop.screening_controller); decisions are written by the store worker
(desktop.store_worker). The GUI thread never waits.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import QApplication, QFileDialog, QMainWindow, QMessageBox

from core.reading.heatmap_default import map_hidden_by_default
from core.reading.session import ReadingSession
from core.reading import study_job as job_events
from core.screening.results import earlier_preparation_note
from desktop import notices, reading_actions
from desktop.model_choice import ModelChoice
from desktop.reading_keys import ReadingKeys
from desktop.results_model import COL_THUMBNAIL, ResultsTableModel
from desktop.screening_controller import StudyScreening
from desktop.session_bridge import SessionSignals
from desktop.settings import AppSettings
from desktop.status_panel import RESEARCH_NOTICE, ScreeningStatus
from desktop.window_actions import build_actions, build_toolbar
from desktop.window_layout import add_inbox, build_panes, fill_filter_combo, restore_layout
from desktop.store_worker import StoreWorker
from desktop.workers import worker_errors

__all__ = ["MainWindow", "RESEARCH_NOTICE"]
_REFRESH_DELAY_MS = 150  # coalesce redraws while results stream in (a 600-row refresh is ~25 ms)


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
        self.study = None  # desktop.study.StudyFiles of the open study
        self.study_folder: Path | None = None
        self.device, self.last_summary = "", None
        self._pending_study: str | None = None
        self._had_model = False  # a model was in use before (a change re-opens the study)
        self._closing_dialog = None  # the "saving decisions" progress while closing
        self.setWindowTitle("PneumoScan")
        # The models the window views: the session (reading state), the store's job runner,
        # the table model over the session and the screening job's controller.
        self.store = StoreWorker(store_path, self)
        self.session = ReadingSession(submit=self.store.session_submit, reader=self.settings.reader_name)
        self.signals = SessionSignals(self.session, self)
        self.results_model = ResultsTableModel(self.session, self)
        self.screening = StudyScreening(self)
        self._build_ui()
        self._connect()
        restore_layout(self)
        self._set_running(False)
        self.refresh()

    def _build_ui(self) -> None:
        """Every widget and action, in one place and one order: actions and menus, the toolbar
        (model and threshold), the panes (table, reading bar + viewer, review panel), the Inbox
        dock, the status bar, the reading keys."""
        build_actions(self)
        build_toolbar(self)
        self.models = ModelChoice(self.model_combo, self.settings, self)
        build_panes(self)
        add_inbox(self)
        self.status = ScreeningStatus(self.statusBar())
        self.device_label, self.research_label = self.status.device_label, self.status.research_label
        self.keys = ReadingKeys(self, [self.table, self.viewer.view])
        self._refresh_timer = QTimer(self, singleShot=True, interval=_REFRESH_DELAY_MS)

    def _connect(self) -> None:
        """The window follows its models through their events (the session's, the store's,
        the screening job's, every worker's errors)."""
        self.models.changed.connect(self._on_model)
        self.models.listed.connect(self._on_models_listed)
        self.screening.event.connect(self.on_job_event)
        self.screening.finished.connect(self.on_job_done)
        self.screening.failed.connect(self.on_job_failed)
        self.store.unsaved_changed.connect(self._show_unsaved)
        self.store.write_failed.connect(lambda error: self._show_unsaved(self.store.unsaved, error))
        worker_errors().failed.connect(self._on_worker_error)  # a bound slot: disconnected with the window
        self.table.horizontalHeader().sectionClicked.connect(self._on_header_clicked)
        self.table.selectionModel().currentRowChanged.connect(self._on_table_row)
        self.keys.cue_changed.connect(self.reading_bar.set_cue)
        self._refresh_timer.timeout.connect(self.refresh)
        for signal in (self.signals.rowsChanged, self.signals.thresholdChanged, self.signals.filterChanged,
                       self.signals.decisionChanged, self.signals.signOffChanged):
            signal.connect(self.schedule_refresh)
        self.signals.thresholdChanged.connect(lambda value: self.threshold_control.set_value(value, emit=False))
        self.signals.queueChanged.connect(self._on_queue_changed)
        self.signals.cursorChanged.connect(self._on_cursor)
        self.signals.decisionChanged.connect(self._on_decision)
        app = QApplication.instance()
        if app is not None:  # quitting without closing the window (e.g. a signal) still stops work
            app.aboutToQuit.connect(self.shutdown)

    # -- messages (desktop.notices) -------------------------------------------

    def notify(self, title: str, text: str, icon=QMessageBox.Icon.Warning) -> None:
        """Tell the reader something; never blocks (no nested event loop)."""
        self.messages.append(f"{title}: {text}")
        self.statusBar().showMessage(f"{title}: {text}", 15_000)
        if not self.quiet:
            notices.message_box(self, title, text, icon)

    def _on_worker_error(self, context: str, message: str) -> None:
        self.notify(f"{context} failed", message)  # a job failed and nobody closer showed it

    def _show_unsaved(self, count: int, error: str = "") -> None:
        """While the store fails: the count in the status bar, and "NOT SAVED yet" on each row."""
        self.status.show_unsaved(count, self.store.failing, error)
        if self.results_model.unsaved_shown != self.store.failing:
            self.results_model.unsaved_shown = self.store.failing
            self.schedule_refresh()

    def show_about(self) -> None:
        return notices.show_about(self, self.current_entry)

    def show_shortcuts(self):
        from desktop.shortcuts import ShortcutSheet
        sheet = ShortcutSheet(self)
        sheet.show()
        return sheet

    def show_first_run_notice(self) -> QMessageBox | None:
        """The once-per-user research-use notice (callers skip it in tests and smoke runs)."""
        return notices.first_run_notice(self)

    # -- models (desktop.model_choice.ModelChoice) -----------------------------------

    def start(self, folder=None) -> None:
        """After show(): list the models (on a worker), then open `folder`."""
        self._pending_study = str(folder) if folder else None
        self.refresh_models()

    def refresh_models(self) -> None:
        self.models.refresh()

    def select_model(self, label: str) -> None:
        """Make model `label` ("name vN") the active one, e.g. one the training wizard just saved."""
        self.models.select(label)

    current_entry = property(lambda self: self.models.current)

    def _on_model(self, entry, reader_chose: bool) -> None:
        """Another model in use: its threshold, the Inbox's AI column, and the study screened by it."""
        self.inbox.set_model_hash(entry.card.sha256)
        self.set_threshold(entry.card.threshold, by_reader=False)
        first = not self._had_model
        self._had_model = True
        if self.study_folder is not None and not self._pending_study and (reader_chose or not first):
            self.open_study(self.study_folder)  # other model: other stored results

    def _on_models_listed(self, problem: str) -> None:
        if problem:
            self.notify("No model", problem)
        pending, self._pending_study = self._pending_study, None
        if pending:
            self.open_study(pending)

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
        if reading_actions.refuse_screening(self, use_stored):
            return
        entry = self.current_entry
        if self.study_folder is None or entry is None:
            message = "Open a study folder first." if self.study_folder is None else "No screening model is installed."
            self.notify("Cannot screen", message)
            self.screening_failed.emit(message)
            return
        request = job_events.StudyRequest(folder=str(self.study_folder), model_entry=entry,
                                          threshold=self.session.threshold, db_path=self.store_path,
                                          use_stored=use_stored)
        self._set_running(True)
        self.statusBar().showMessage(f"Opening {self.study_folder.name}…")
        self.screening.start(request)

    def cancel_screening(self) -> None:
        if self.is_screening:
            self.screening.cancel()  # the job stops at its next yield (within one batch)
            self.statusBar().showMessage("Cancelling…")

    def _stop_job(self) -> None:
        self.screening.stop()
        self._set_running(False)

    def _set_running(self, running: bool) -> None:
        """Actions and progress follow the screening controller (the one "is running")."""
        self.run_action.setEnabled(not running)
        self.rescreen_action.setEnabled(not running)
        self.cancel_action.setEnabled(running)
        if not running:
            self.status.stopped()

    is_screening = property(lambda self: self.screening.running)

    def on_job_event(self, event: str, payload) -> None:
        if event == job_events.SCANNED:
            self.study = payload
            self.session.open_study(payload.folder, payload.files, payload.truth, payload.patients)
            self.messages.extend(payload.warnings[:3])
            if not payload.files:
                self.statusBar().showMessage(f"No images found in {payload.folder}")
        elif event == job_events.DECISIONS:
            decisions, sign_off, overrides = payload
            self.session.set_decisions(decisions)
            self.session.set_overrides(overrides)
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
            self.viewer.forget(key)  # a fresh result may bring a heatmap
            if key == self.session.current:
                self._on_cursor(key)
            self._show_first_image()
        elif event == job_events.THUMBNAILS:
            for key, image in payload:
                self.results_model.set_thumbnail(str(Path(key)), image)

    def on_job_done(self, summary: dict) -> None:
        self.last_summary = summary
        self.device = summary.get("device") or self.device
        self.status.set_device(self.device or "- (all results were stored)")
        self._set_running(False)
        verb = "Cancelled" if summary.get("cancelled") else "Done"
        earlier = earlier_preparation_note(summary.get("earlier_preparation", 0))
        update = f"; {earlier}: Screen again to update them" if earlier else ""
        self.statusBar().showMessage(f"{verb}: {summary['screened']} screened now, {summary['from_store']} stored, "
                                     f"{summary['errors']} errors{update}", 15_000)
        self.refresh()
        self.screening_finished.emit(summary)

    def on_job_failed(self, message: str) -> None:
        self._set_running(False)
        self.notify("Screening stopped", message)
        self.screening_failed.emit(message)

    # -- the session's state on screen ------------------------------------------

    threshold = property(lambda self: self.session.threshold)

    @Slot(float)
    def set_threshold(self, value: float, by_reader: bool = True) -> None:
        """Re-label everything at a new threshold; the model is not re-run (refused once signed off)."""
        refused = self.session.set_threshold(value, by_reader)
        if refused:
            self.statusBar().showMessage(f"Threshold not changed: {refused}", 10_000)
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
        self.status.show_counts(counts, self.is_screening)
        fill_filter_combo(self.filter_combo, session)
        self.reading_bar.set_queue_text(session.queue_text())
        self.sign_off_box.show_sign_off(session.signed_off, session.reader, session.record.amendments)
        self.reading_bar.show_state(session)
        row = session.row(session.current)
        if row is not None:
            self.details.show_row(session, row)

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
        if self.session.current is not None:
            self._on_cursor(self.session.current)  # the heatmap default differs inside a queue

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
        quiet = map_hidden_by_default(self.session.ai_call(row), row.probability, self.session.threshold,
                                      reviewing=self.session.queue_kind is not None, band=self.session.band)
        self.viewer.load(key, cam, row.file, ai_normal=quiet)

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
        reading_actions.decide(self, decision)

    def screen_anyway(self) -> None:
        reading_actions.screen_anyway(self)

    def confirm_out_of_scope(self) -> None:
        reading_actions.confirm_out_of_scope(self)

    def undo_decision(self) -> None:
        reading_actions.undo(self)

    def _on_decision(self, key: str) -> None:
        if key == self.session.current:
            self._load_history(key)

    def ask_reader_name(self) -> None:
        notices.ask_reader_name(self)

    def set_reader_name(self, name: str) -> None:
        self.settings.reader_name = name
        self.session.reader = name.strip()
        self.refresh()

    def toggle_sign_off(self) -> None:
        reading_actions.toggle_sign_off(self)

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
        self.inbox.shutdown()
        if not self.store.close():
            self.messages.append("Closing: decisions that could not be saved are listed in the log")

    def closeEvent(self, event) -> None:
        # Decisions the store has not written yet are never dropped silently: the window
        # stays until they are saved (a progress dialog), or the reader chooses to quit
        # without them. Quiet windows (tests, smoke runs) let the store flush instead.
        if self.store.unsaved and not self.quiet:
            event.ignore()
            if self._closing_dialog is None:
                self._closing_dialog = notices.saving_before_close(
                    self, self.store, on_saved=lambda: self._close_after_saving(drop=False),
                    on_give_up=lambda: self._close_after_saving(drop=True))
            return
        self.shutdown()
        self.settings.geometry = self.saveGeometry()
        self.settings.splitter_state = self.splitter.saveState()
        self.settings.sync()
        super().closeEvent(event)

    def _close_after_saving(self, drop: bool) -> None:
        """The saving dialog ended: every decision written, or the reader chose to quit without them."""
        self._closing_dialog = None
        if drop:
            self.store.drop_pending()
        self.close()
