"""The PneumoScan main window: results table, viewer, review queue, details.

The window only wires widgets together and keeps the reading state (current
image, open queue, threshold). Files, the model and the store are touched on
worker threads (desktop.workers); queue logic lives in desktop.review_queue.
"""
from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QEvent, QModelIndex, QObject, QSize, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (QAbstractItemView, QAbstractSpinBox, QApplication, QButtonGroup,
                               QComboBox, QFileDialog, QFrame, QHBoxLayout, QHeaderView, QLabel, QLineEdit,
                               QMainWindow, QMessageBox, QProgressBar, QPushButton, QScrollArea, QSizePolicy, QSplitter,
                               QTableView, QToolButton, QVBoxLayout, QWidget)

from core.results import AGREE, DISAGREE, UNSURE, classify
from desktop.confusion_widget import ConfusionMatrixWidget
from desktop.details_panel import DetailsPanel
from desktop.formatting import format_duration
from desktop.results_model import (COL_AI_CALL, COL_FILE, COL_PROBABILITY, COL_READER, COL_THUMBNAIL,
                                   COL_TRUTH, ResultsFilterProxy, ResultsTableModel)
from desktop.review_queue import (FILTER_ALL, FILTERS, NEEDS_REVIEW, DecisionUndoStack, ReviewQueue,
                                  confusion_counts, matches_filter, needs_review_keys)
from desktop.settings import AppSettings
from desktop.threshold_control import ThresholdControl
from desktop.viewer import ViewerPanel
from desktop.workers import THUMBNAIL_SIZE, ScreeningJob, ScreeningRequest, ScreeningRun, StoreThread, run_in_pool

RESEARCH_NOTICE = "Research use only, not for diagnosis"
ABOUT_TEXT = (
    "<h3>PneumoScan</h3>"
    "<p>Screens chest X-rays for pneumonia with a convolutional network and shows "
    "Grad-CAM heatmaps of the evidence it used.</p>"
    f"<p><b>{RESEARCH_NOTICE}.</b> PneumoScan is not a medical device; every AI call "
    "must be read by a qualified radiologist.</p>"
)
FIRST_RUN_TEXT = (
    f"<p><b>{RESEARCH_NOTICE}.</b></p>"
    "<p>PneumoScan is a research tool, not a medical device. Its AI calls and heatmaps "
    "are aids for a qualified reader and must never be used on their own for a diagnosis.</p>"
)

_SUMMARY_DELAY_MS = 120  # coalesce counts/filters while results stream in


class _PendingDecision:
    """Filled in by the store thread; an undo queued after it finds it filled."""
    decision = None


class ReviewKeyFilter(QObject):
    """Reading keys (Right/Space, Left, A, D, U, H, Ctrl+Z) wherever the reader is,
    except while typing into an input field."""

    def __init__(self, window: "MainWindow"):
        super().__init__(window)
        self._window = window

    def eventFilter(self, obj, event) -> bool:
        if event.type() != QEvent.Type.KeyPress:
            return False
        if isinstance(obj, (QAbstractSpinBox, QLineEdit)):
            return False
        action = self._window.review_action_for(event.key(), event.modifiers())
        if action is None:
            return False
        action()
        return True


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
        self.run: ScreeningRun | None = None
        self.queue: ReviewQueue | None = None
        self.current_key: str | None = None
        self.undo_stack = DecisionUndoStack()
        self.device = ""
        self.last_summary: dict | None = None
        self._pending_study: str | None = None
        self._wanted_model: str | None = None  # "name vN" asked for by select_model()
        self._screen_total = 0
        self._screen_done = 0
        self._screen_started_at = 0.0

        self.setWindowTitle("PneumoScan")
        self.store = StoreThread(store_path, self)
        self.results_model = ResultsTableModel(self)
        self.proxy = ResultsFilterProxy(self)
        self.proxy.setSourceModel(self.results_model)
        self._build_actions()
        self._build_toolbar()
        self._build_central()
        self._build_status_bar()
        self._summary_timer = QTimer(self, singleShot=True, interval=_SUMMARY_DELAY_MS)
        self._summary_timer.timeout.connect(self.refresh_summary)
        self.key_filter = ReviewKeyFilter(self)
        for widget in (self, self.table, self.table.viewport(), self.viewer.view,
                       self.viewer.view.viewport(), self.confusion):
            widget.installEventFilter(self.key_filter)
        self._restore_layout()
        self._set_running(False)
        app = QApplication.instance()
        if app is not None:  # quitting without closing the window (e.g. a signal) still stops threads
            app.aboutToQuit.connect(self.shutdown)

    # -- construction --------------------------------------------------------

    def _build_actions(self) -> None:
        self.open_action = QAction("Open folder…", self, shortcut=QKeySequence.StandardKey.Open,
                                   triggered=self.choose_study)
        self.run_action = QAction("Screen", self, triggered=lambda: self.start_screening(),
                                  toolTip="Screen the images that have no stored result for this model")
        self.rescreen_action = QAction("Screen again (ignore stored results)", self,
                                       triggered=lambda: self.start_screening(use_stored=False))
        self.cancel_action = QAction("Cancel", self, triggered=self.cancel_screening,
                                     toolTip="Stop screening (results so far are kept)")
        self.export_csv_action = QAction("Export CSV…", self, triggered=self.export_csv)
        self.export_pdf_action = QAction("Export PDF summary…", self, triggered=self.export_pdf)
        self.train_action = QAction("Train…", self, triggered=self.open_training_wizard,
                                    toolTip="Train or fine-tune a model on labelled images")
        self.manage_models_action = QAction("Manage models…", self, triggered=self.open_model_manager,
                                            toolTip="Rename or delete your models")
        self.about_action = QAction("About PneumoScan", self, triggered=self.show_about)
        self.quit_action = QAction("Quit", self, shortcut=QKeySequence.StandardKey.Quit, triggered=self.close)

        file_menu = self.menuBar().addMenu("&File")
        for action in (self.open_action, self.export_csv_action, self.export_pdf_action):
            file_menu.addAction(action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)
        screen_menu = self.menuBar().addMenu("&Screening")
        for action in (self.run_action, self.rescreen_action, self.cancel_action, self.train_action,
                       self.manage_models_action):
            screen_menu.addAction(action)
        # Keys are handled by ReviewKeyFilter; the menu only documents them ("\t" text).
        review_menu = self.menuBar().addMenu("&Review")
        for text, slot in (("Next image\tRight / Space", self.next_image),
                           ("Previous image\tLeft", self.previous_image),
                           ("Agree with AI\tA", lambda: self.decide(AGREE)),
                           ("Disagree with AI\tD", lambda: self.decide(DISAGREE)),
                           ("Unsure\tU", lambda: self.decide(UNSURE)),
                           ("Heatmap on/off\tH", self.toggle_heatmap),
                           ("Undo last decision\tCtrl+Z", self.undo_decision),
                           ("Open needs-review queue", lambda: self.open_queue(NEEDS_REVIEW))):
            review_menu.addAction(QAction(text, self, triggered=slot))
        self.menuBar().addMenu("&Help").addAction(self.about_action)

    def _build_toolbar(self) -> None:
        bar = self.addToolBar("Main")
        bar.setObjectName("mainToolbar")
        bar.setMovable(False)
        bar.addAction(self.open_action)
        bar.addSeparator()
        bar.addWidget(QLabel(" Model ", self))
        self.model_combo = QComboBox(self)
        self.model_combo.setObjectName("modelCombo")
        self.model_combo.setMinimumContentsLength(26)
        self.model_combo.setPlaceholderText("loading models…")
        self.model_combo.activated.connect(self._on_model_chosen)
        bar.addWidget(self.model_combo)
        self.threshold_control = ThresholdControl(0.5, self)
        self.threshold_control.setMaximumWidth(480)  # a compact toolbar item, not a stretch
        self.threshold_control.threshold_changed.connect(self.set_threshold)
        bar.addWidget(self.threshold_control)
        bar.addSeparator()
        bar.addAction(self.run_action)
        bar.addAction(self.cancel_action)
        bar.addSeparator()
        export_button = QToolButton(self)
        export_button.setText("Export")
        export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        export_button.addAction(self.export_csv_action)
        export_button.addAction(self.export_pdf_action)
        bar.addWidget(export_button)
        bar.addAction(self.train_action)

    def _build_central(self) -> None:
        # Left: filters + results table.
        left = QWidget(self)
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        filter_row = QHBoxLayout()
        self.filter_group = QButtonGroup(self)
        self.filter_buttons: dict[str, QToolButton] = {}
        for name, text in FILTERS.items():
            button = QToolButton(left)
            button.setText(text)
            button.setCheckable(True)
            button.setObjectName(f"filter_{name}")
            button.setChecked(name == FILTER_ALL)
            button.clicked.connect(lambda _=False, n=name: self.set_filter(n))
            self.filter_group.addButton(button)
            self.filter_buttons[name] = button
            filter_row.addWidget(button)
        filter_row.addStretch(1)
        left_layout.addLayout(filter_row)

        self.table = QTableView(left)
        self.table.setObjectName("resultsTable")
        self.table.setModel(self.proxy)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        self.table.setWordWrap(False)
        self.table.setIconSize(QSize(THUMBNAIL_SIZE, THUMBNAIL_SIZE))
        self.table.verticalHeader().setDefaultSectionSize(THUMBNAIL_SIZE + 6)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        for column, width in ((COL_THUMBNAIL, THUMBNAIL_SIZE + 8), (COL_FILE, 190), (COL_PROBABILITY, 80),
                              (COL_AI_CALL, 90), (COL_READER, 140), (COL_TRUTH, 90)):
            header.resizeSection(column, width)
        header.setStretchLastSection(True)
        self.table.setSortingEnabled(True)
        self.proxy.sort(-1)  # insertion (file) order until the reader sorts
        self.table.selectionModel().currentRowChanged.connect(self._on_table_row)
        left_layout.addWidget(self.table, 1)

        # Centre: review bar + viewer.
        centre = QWidget(self)
        centre_layout = QVBoxLayout(centre)
        centre_layout.setContentsMargins(0, 0, 0, 0)
        review_bar = QHBoxLayout()
        self.queue_label = QLabel("No review queue open", centre)
        self.queue_label.setObjectName("queueLabel")
        # Long queue names must not widen the window past a laptop screen.
        self.queue_label.setWordWrap(True)
        self.queue_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        review_bar.addWidget(self.queue_label, 1)
        self.review_buttons = {}
        for text, tip, slot in (("◀", "Previous (Left)", self.previous_image),
                                ("Agree (A)", "The AI call is right", lambda: self.decide(AGREE)),
                                ("Disagree (D)", "The AI call is wrong", lambda: self.decide(DISAGREE)),
                                ("Unsure (U)", "Cannot tell from this image", lambda: self.decide(UNSURE)),
                                ("▶", "Next (Right or Space)", self.next_image)):
            button = QPushButton(text, centre)
            button.setToolTip(tip)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys stay with the viewer
            button.clicked.connect(slot)
            review_bar.addWidget(button)
            self.review_buttons[text] = button
        centre_layout.addLayout(review_bar)
        self.viewer = ViewerPanel(self.settings.heatmap_visible, self.settings.heatmap_opacity, centre)
        self.viewer.heatmap_toggled.connect(lambda on: setattr(self.settings, "heatmap_visible", on))
        self.viewer.opacity_changed.connect(lambda value: setattr(self.settings, "heatmap_opacity", value))
        centre_layout.addWidget(self.viewer, 1)

        # Right: confusion matrix / needs review + details.
        right = QWidget(self)
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        self.confusion = ConfusionMatrixWidget(right)
        self.confusion.queue_requested.connect(self.open_queue)
        self.details = DetailsPanel(right)
        right_layout.addWidget(self.confusion)
        right_layout.addWidget(self.details, 1)

        # Scrolls rather than forcing its widest label's width on the window.
        right_scroll = QScrollArea(self)
        right_scroll.setWidget(right)
        right_scroll.setWidgetResizable(True)
        right_scroll.setFrameShape(QFrame.Shape.NoFrame)
        right_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)

        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.setObjectName("mainSplitter")
        for widget in (left, centre, right_scroll):
            self.splitter.addWidget(widget)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 5)
        self.splitter.setStretchFactor(2, 2)
        self.setCentralWidget(self.splitter)

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.progress = QProgressBar(self)
        self.progress.setMaximumWidth(220)
        self.progress.setFormat("%v / %m")
        self.progress.setVisible(False)
        self.rate_label = QLabel(self)
        self.device_label = QLabel("Device: -", self)
        self.research_label = QLabel(RESEARCH_NOTICE, self)
        self.research_label.setObjectName("researchNotice")
        bar.addWidget(self.progress)
        bar.addWidget(self.rate_label)
        bar.addPermanentWidget(self.device_label)
        bar.addPermanentWidget(self.research_label)

    def _restore_layout(self) -> None:
        geometry, state = self.settings.geometry, self.settings.splitter_state
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1400, 850)
        if state is not None:
            self.splitter.restoreState(state)
        else:
            self.splitter.setSizes([480, 540, 380])

    # -- messages ------------------------------------------------------------

    def notify(self, title: str, text: str, icon=QMessageBox.Icon.Warning) -> None:
        """Tell the reader something; never blocks (no nested event loop)."""
        self.messages.append(f"{title}: {text}")
        self.statusBar().showMessage(f"{title}: {text}", 15_000)
        if self.quiet:
            return
        box = QMessageBox(icon, title, text, QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    def show_about(self) -> None:
        box = QMessageBox(QMessageBox.Icon.Information, "About PneumoScan", ABOUT_TEXT,
                          QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()

    def show_first_run_notice(self) -> QMessageBox | None:
        """The once-per-user research-use notice (callers skip it in tests and smoke runs)."""
        if not self.settings.research_notice_due(suppressed=self.quiet):
            return None
        box = QMessageBox(QMessageBox.Icon.Information, "PneumoScan: research use only",
                          FIRST_RUN_TEXT, QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        self.settings.mark_research_notice_seen()
        return box

    # -- models --------------------------------------------------------------

    def start(self, folder=None) -> None:
        """After show(): list the models (on a worker), then open `folder`."""
        self._pending_study = str(folder) if folder else None
        self.refresh_models()

    def refresh_models(self) -> None:
        """Re-read the model registry (also for the training wizard after it saves a model)."""
        def list_entries():
            from core.registry import find_model, list_models
            entries = list_models()
            try:
                default = find_model(None)
            except Exception:
                default = entries[0] if entries else None
            return entries, default

        run_in_pool(list_entries, on_done=self._models_listed,
                    on_error=lambda message: self._models_listed(([], None), message))

    def _models_listed(self, listing, error: str | None = None) -> None:
        entries, default = listing
        previous = self.current_entry
        self.model_entries = list(entries)
        self.model_combo.clear()
        for entry in self.model_entries:
            card = entry.card
            self.model_combo.addItem(card.label + ("" if entry.shipped else "  (yours)"))
            self.model_combo.setItemData(self.model_combo.count() - 1,
                                         f"{card.architecture}, {card.input_size}px, created {card.created}",
                                         Qt.ItemDataRole.ToolTipRole)
        if not self.model_entries:
            self.model_combo.setPlaceholderText("no model installed")
            self.notify("No model", error or "No screening model is installed. Train one with Train….")
        chosen = self._pick_entry(previous, default)
        if chosen is not None:
            self.model_combo.setCurrentIndex(self.model_entries.index(chosen))
            if previous is None or previous.card.sha256 != chosen.card.sha256:
                self.threshold_control.set_value(chosen.card.threshold)
                if previous is not None and self.study_folder is not None and not self._pending_study:
                    self.open_study(self.study_folder)  # other model: other stored results
        if self._pending_study:
            folder, self._pending_study = self._pending_study, None
            self.open_study(folder)

    def _pick_entry(self, previous, default):
        """Asked-for model, else the one in use, else the remembered one, else the default."""
        wanted, self._wanted_model = self._wanted_model, None
        by_hash = {e.card.sha256: e for e in self.model_entries}
        return (self._entry_by_label(wanted)
                or (by_hash.get(previous.card.sha256) if previous is not None else None)
                or self._entry_by_label(self.settings.model_name)
                or (by_hash.get(default.card.sha256) if default is not None else None)
                or (self.model_entries[0] if self.model_entries else None))

    def _entry_by_label(self, label: str | None):
        # A user's model wins over a shipped one of the same name and version (as in the registry).
        matches = [e for e in self.model_entries if label and e.card.label == label]
        return max(matches, key=lambda e: not e.shipped) if matches else None

    def select_model(self, label: str) -> None:
        """Make model `label` ("name vN") the active one, e.g. one the training wizard just saved."""
        self.settings.model_name = label
        self._wanted_model = label
        self.refresh_models()

    @property
    def current_entry(self):
        index = self.model_combo.currentIndex() if hasattr(self, "model_combo") else -1
        return self.model_entries[index] if 0 <= index < len(self.model_entries) else None

    def _on_model_chosen(self, index: int) -> None:
        entry = self.current_entry
        if entry is None:
            return
        self.settings.model_name = entry.card.label
        self.threshold_control.set_value(entry.card.threshold)
        if self.study_folder is not None:
            self.open_study(self.study_folder)  # other model: other stored results

    # -- study and screening -------------------------------------------------

    def choose_study(self) -> None:
        start = str(self.study_folder or Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Open a study folder", start)
        if folder:
            self.open_study(folder)

    def open_study(self, folder) -> None:
        """Show a study: stored results at once, then screen what is missing."""
        self._stop_run()
        folder = Path(folder).expanduser()
        if not folder.is_dir():
            self.notify("Study not found", f"The folder {folder} does not exist.")
            self.screening_failed.emit(f"study folder not found: {folder}")
            return
        self.study_folder = folder.resolve()
        self.study = None
        self.queue = None
        self.current_key = None
        self.undo_stack = DecisionUndoStack()
        self.results_model.reset_study(self.study_folder)
        self.viewer.clear()
        self.details.clear()
        self._update_queue_label()
        self.setWindowTitle(f"PneumoScan - {self.study_folder.name}")
        self.settings.last_study = str(self.study_folder)
        self.study_opened.emit(str(self.study_folder))
        self.start_screening()

    def start_screening(self, use_stored: bool = True) -> None:
        if self.study_folder is None:
            self.notify("No study", "Open a study folder first.")
            return
        entry = self.current_entry
        if entry is None:
            message = "No screening model is installed."
            self.notify("No model", message)
            self.screening_failed.emit(message)
            return
        self._stop_run()
        request = ScreeningRequest(folder=str(self.study_folder), model_entry=entry,
                                   threshold=self.threshold, db_path=self.store_path,
                                   use_stored=use_stored)
        self.run = ScreeningRun(ScreeningJob(request), self)
        self.run.study_scanned.connect(self._on_study_scanned)
        self.run.stored_loaded.connect(self._on_stored_loaded)
        self.run.screening_started.connect(self._on_screening_started)
        self.run.result_ready.connect(self._on_result)
        self.run.thumbnail_ready.connect(self.results_model.set_thumbnail)
        self.run.finished.connect(self._on_finished)
        self.run.failed.connect(self._on_failed)
        self._screen_total = self._screen_done = 0
        self._set_running(True)
        self.statusBar().showMessage(f"Opening {self.study_folder.name}…")
        self.run.start()

    def cancel_screening(self) -> None:
        if self.run is not None and self.run.is_running():
            self.run.cancel()
            self.statusBar().showMessage("Cancelling…")

    def _stop_run(self) -> None:
        if self.run is not None:
            self.run.discard()
            self.run.stop()
            self.run = None
        self._set_running(False)

    def _set_running(self, running: bool) -> None:
        self.run_action.setEnabled(not running)
        self.rescreen_action.setEnabled(not running)
        self.cancel_action.setEnabled(running)
        self.progress.setVisible(running)

    @property
    def is_screening(self) -> bool:
        return self.run is not None and self.run.is_running()

    @Slot(object)
    def _on_study_scanned(self, study) -> None:
        self.study = study
        self.results_model.truth = dict(study.truth)
        for warning in study.warnings[:3]:
            self.messages.append(warning)
        if not study.files:
            self.statusBar().showMessage(f"No images found in {study.folder}")

    @Slot(list, dict)
    def _on_stored_loaded(self, results, decisions) -> None:
        self.results_model.add_results(results)
        self.results_model.set_decisions(decisions)
        self._schedule_summary()
        if results:
            self.statusBar().showMessage(f"{len(results)} stored results shown", 5000)
            self._show_first_image()

    @Slot(int, str)
    def _on_screening_started(self, total: int, device: str) -> None:
        self.device = device
        self.device_label.setText(f"Device: {device}")
        self._screen_total, self._screen_done = total, 0
        self._screen_started_at = time.perf_counter()
        self.progress.setRange(0, total)
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self.statusBar().showMessage(f"Screening {total} images…")

    @Slot(object, object)
    def _on_result(self, result, thumbnail) -> None:
        self.results_model.add_result(result, thumbnail)
        self._screen_done += 1
        self.progress.setValue(self._screen_done)
        elapsed = time.perf_counter() - self._screen_started_at
        if elapsed > 0 and self._screen_done:
            rate = self._screen_done / elapsed
            left = (self._screen_total - self._screen_done) / rate
            self.rate_label.setText(f"{rate:.1f} img/s, about {format_duration(left)} left")
        if self.current_key is None and result.error is None:
            self._show_first_image()
        self._schedule_summary()

    @Slot(dict)
    def _on_finished(self, summary: dict) -> None:
        self.last_summary = summary
        if summary.get("device"):
            self.device = summary["device"]
        self._set_running(False)
        self.rate_label.clear()
        if not self.device:
            self.device_label.setText("Device: - (all results were stored)")
        rows = self.results_model.rowCount()
        verb = "Cancelled" if summary.get("cancelled") else "Done"
        self.statusBar().showMessage(
            f"{verb}: {rows} images ({summary['screened']} screened now, {summary['from_store']} stored, "
            f"{summary['errors']} errors)", 15_000)
        self.refresh_summary()
        self.screening_finished.emit(summary)

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        self._set_running(False)
        self.notify("Screening stopped", message)
        self.screening_failed.emit(message)

    # -- threshold, filters, summary -----------------------------------------

    @property
    def threshold(self) -> float:
        return self.threshold_control.value()

    @Slot(float)
    def set_threshold(self, value: float) -> None:
        """Re-label everything at a new threshold; the model is not re-run."""
        if abs(self.threshold_control.value() - value) > 1e-9:
            self.threshold_control.set_value(value, emit=False)
        self.results_model.set_threshold(self.threshold)
        if self.queue is not None:
            self.queue = self._rebuilt_queue(self.queue.kind, keep=self.current_key)
        self.refresh_summary()
        if self.current_key is not None:
            self._show_details(self.current_key)

    def set_filter(self, name: str) -> None:
        self.filter_buttons[name].setChecked(True)
        self.proxy.set_filter(name)

    def _schedule_summary(self) -> None:
        if not self._summary_timer.isActive():
            self._summary_timer.start()

    def refresh_summary(self) -> None:
        """Confusion counts, queue sizes and filter counts at the current threshold."""
        self._summary_timer.stop()
        items = self.results_model.review_items()
        threshold = self.threshold
        truth_known = any(item.truth for item in items) or bool(self.study and self.study.truth_known)
        self.confusion.set_counts(confusion_counts(items, threshold), truth_known,
                                  len(needs_review_keys(items, threshold)))
        for name, button in self.filter_buttons.items():
            count = sum(1 for item in items if matches_filter(item, name, threshold))
            button.setText(f"{FILTERS[name]} ({count})")
        self.proxy.refilter()
        self._update_queue_label()

    # -- review queue and navigation -----------------------------------------

    def _rebuilt_queue(self, kind: str, keep: str | None = None) -> ReviewQueue:
        queue = ReviewQueue.build(kind, self.results_model.review_items(), self.threshold)
        if keep is not None:
            queue.go_to(keep)
        return queue

    @Slot(str)
    def open_queue(self, kind: str) -> None:
        """Open a confusion-matrix cell (or needs review) as a queue; resume at the first undecided."""
        self.queue = self._rebuilt_queue(kind)
        decided = {row.key for row in self.results_model.rows() if row.decision is not None}
        key = self.queue.start_at_first_undecided(decided)
        self._update_queue_label()
        self.viewer.view.setFocus()  # so Space does not re-press the cell button
        if key is not None:
            self.show_image(key)

    def close_queue(self) -> None:
        self.queue = None
        self._update_queue_label()

    def _update_queue_label(self) -> None:
        if self.queue is None:
            self.queue_label.setText("No queue: pick a matrix cell")
        else:
            self.queue_label.setText(self.queue.position_text())

    def review_action_for(self, key: int, modifiers):
        """The reading action bound to a key press, or None."""
        ctrl = bool(modifiers & Qt.KeyboardModifier.ControlModifier)
        if ctrl:
            return self.undo_decision if key == Qt.Key.Key_Z else None
        return {
            Qt.Key.Key_Right: self.next_image, Qt.Key.Key_Space: self.next_image,
            Qt.Key.Key_Left: self.previous_image,
            Qt.Key.Key_A: lambda: self.decide(AGREE), Qt.Key.Key_D: lambda: self.decide(DISAGREE),
            Qt.Key.Key_U: lambda: self.decide(UNSURE), Qt.Key.Key_H: self.toggle_heatmap,
        }.get(key)

    def next_image(self) -> None:
        self._step(+1)

    def previous_image(self) -> None:
        self._step(-1)

    def _step(self, direction: int) -> None:
        # Inside a queue, follow the queue; otherwise follow the table's order.
        if self.queue is not None and (self.current_key is None or self.current_key in self.queue.keys):
            if self.current_key is not None:
                self.queue.go_to(self.current_key)
            key = self.queue.next() if direction > 0 else self.queue.previous()
            self._update_queue_label()
        else:
            row = self.proxy.proxy_row_of(self.current_key) if self.current_key else None
            target = 0 if row is None else row + direction
            key = self.proxy.key_at(target) if 0 <= target < self.proxy.rowCount() else None
        if key is not None and key != self.current_key:
            self.show_image(key)
        elif self.queue is not None and self.queue.at_end and direction > 0:
            self.statusBar().showMessage(f"End of the queue: {self.queue.title.lower()}", 4000)

    def _show_first_image(self) -> None:
        """Something to look at as soon as possible: the first readable image in table order."""
        if self.current_key is not None:
            return
        for proxy_row in range(self.proxy.rowCount()):
            key = self.proxy.key_at(proxy_row)
            if self.results_model.row_by_key(key).probability is not None:
                self.show_image(key)
                return

    def show_image(self, key: str) -> None:
        """Make `key` the current image: viewer, details, history, table selection."""
        row = self.results_model.row_by_key(key)
        if row is None:
            return
        self.current_key = key
        if self.queue is not None and self.queue.go_to(key):
            self._update_queue_label()
        self._select_in_table(key)
        self._show_details(key)
        self.viewer.load(key, row.result.cam, row.file)

    def _select_in_table(self, key: str) -> None:
        proxy_row = self.proxy.proxy_row_of(key)
        if proxy_row is None:
            return
        index = self.proxy.index(proxy_row, 0)
        if self.table.currentIndex().row() != proxy_row:
            self.table.setCurrentIndex(index)
            self.table.scrollTo(index)

    def _show_details(self, key: str) -> None:
        row = self.results_model.row_by_key(key)
        if row is None:
            return
        self.details.show_row(row, self.threshold)
        self.store.submit(lambda store: store.decision_history(key),
                          on_done=lambda history: self._history_loaded(key, history))

    def _history_loaded(self, key: str, history) -> None:
        if key == self.current_key:
            self.details.set_history(history)

    def _on_table_row(self, current: QModelIndex, _previous: QModelIndex) -> None:
        key = self.proxy.key_at(current.row()) if current.isValid() else None
        if key is not None and key != self.current_key:
            self.show_image(key)

    def toggle_heatmap(self) -> None:
        self.viewer.toggle_heatmap()

    # -- decisions -----------------------------------------------------------

    def decide(self, decision: str) -> None:
        """Record the reader's decision on the current image, then move on."""
        key = self.current_key
        row = self.results_model.row_by_key(key) if key else None
        if row is None or row.probability is None or self.study_folder is None:
            return
        # Plain values captured now: the write runs later on the store thread.
        result, threshold, folder, probability = row.result, self.threshold, self.study_folder, row.probability
        ai_call = classify(probability, threshold)
        pending = _PendingDecision()

        def write(store):
            pending.decision = store.add_decision(
                folder, key, decision, ai_call=ai_call, model=result.model,
                model_hash=result.model_hash, probability=probability, threshold=threshold)
            return pending.decision

        self.store.submit(write, on_done=self._decision_saved,
                          on_error=lambda message: self.notify("Decision not saved", message))
        self.undo_stack.push(key, pending)
        self.next_image()

    def _decision_saved(self, decision) -> None:
        key = str(Path(decision.path))
        self.results_model.set_decision(key, decision)
        self._schedule_summary()
        if key == self.current_key:
            self._show_details(key)

    def undo_decision(self) -> None:
        entry = self.undo_stack.pop()
        if entry is None:
            self.statusBar().showMessage("Nothing to undo", 3000)
            return
        key, pending = entry
        folder = self.study_folder

        def undo(store):
            if pending.decision is not None:  # the write ran first (same thread, in order)
                store.undo_decision(pending.decision.id)
            return store.latest_decisions(folder).get(key)

        self.store.submit(undo, on_done=lambda latest: self._decision_undone(key, latest),
                          on_error=lambda message: self.notify("Undo failed", message))
        self.show_image(key)

    def _decision_undone(self, key: str, latest) -> None:
        self.results_model.set_decision(key, latest)
        self._schedule_summary()
        self.statusBar().showMessage("Decision undone", 3000)
        if key == self.current_key:
            self._show_details(key)

    # -- export --------------------------------------------------------------

    def _export_snapshot(self):
        from desktop.export import snapshot_rows
        rows = snapshot_rows(self.results_model.rows(), self.threshold)
        if not rows:
            self.notify("Nothing to export", "Screen a study first.")
        return rows

    def _ask_export_path(self, title: str, suffix: str, pattern: str) -> str | None:
        name = f"{self.study_folder.name if self.study_folder else 'study'}_pneumoscan.{suffix}"
        start = str((self.study_folder or Path.home()) / name)
        path, _ = QFileDialog.getSaveFileName(self, title, start, pattern)
        return path or None

    def export_csv(self, path: str | None = None) -> None:
        rows = self._export_snapshot()
        if not rows:
            return
        path = path or self._ask_export_path("Export results as CSV", "csv", "CSV files (*.csv)")
        if path:
            from desktop.export import write_csv
            run_in_pool(lambda: write_csv(rows, path), on_done=self._exported,
                        on_error=lambda message: self.notify("Export failed", message))

    def export_pdf(self, path: str | None = None) -> None:
        rows = self._export_snapshot()
        if not rows:
            return
        path = path or self._ask_export_path("Export PDF summary", "pdf", "PDF files (*.pdf)")
        if path:
            from desktop.export import ExportSummary, now_text, write_pdf
            entry = self.current_entry
            summary = ExportSummary(study=str(self.study_folder),
                                    model=entry.card.label if entry else rows[0].model,
                                    threshold=self.threshold, exported_at=now_text())
            self.statusBar().showMessage("Writing PDF summary…")
            run_in_pool(lambda: write_pdf(rows, summary, path), on_done=self._exported,
                        on_error=lambda message: self.notify("Export failed", message))

    def _exported(self, path) -> None:
        self.statusBar().showMessage(f"Exported {path}", 10_000)
        self.exported.emit(str(path))

    # -- training ------------------------------------------------------------

    def open_training_wizard(self) -> None:
        """Open the training wizard (desktop.wizard), or say it is not available yet."""
        try:
            import desktop.wizard as wizard
        except ImportError:
            self.notify("Training", "The training wizard is not available yet.",
                        QMessageBox.Icon.Information)
            return
        opener = getattr(wizard, "open_training_wizard", None)
        if opener is not None:
            opener(self)
        else:
            dialog = wizard.TrainingWizard(self)
            dialog.finished.connect(lambda _result: self.refresh_models())
            dialog.show()

    def open_model_manager(self) -> None:
        try:
            from desktop.model_manager import open_model_manager
        except ImportError:
            self.notify("Models", "The model manager is not available yet.", QMessageBox.Icon.Information)
            return
        open_model_manager(self)

    # -- shutdown ------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop every thread this window started; safe to call more than once."""
        self._stop_run()  # cancel + wait: no thread outlives the window
        self.store.close()  # queued decisions are written before it stops

    def closeEvent(self, event) -> None:
        self.shutdown()
        self.settings.geometry = self.saveGeometry()
        self.settings.splitter_state = self.splitter.saveState()
        self.settings.sync()
        super().closeEvent(event)
