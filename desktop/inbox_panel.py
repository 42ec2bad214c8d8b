"""The Inbox dock: studies received over DICOM, updating live.

A `QAbstractTableModel` (one row per study: patient, patient ID, study date,
images, AI result, what was sent, read / unread) behind a `QSortFilterProxyModel`.
A timer asks a worker to summarise the inbox (headers, the results store and the
outbox are read off the GUI thread); rows are inserted, updated or removed in
place, so the selection and sort order survive every refresh. Double-click (or
Open) opens a study like a folder (`studyOpened`) and marks it read. "Export
DICOM" builds the SR + secondary capture on a worker. "Send results to PACS"
queues them in the persistent outbox (core.pacs.sending: the listener's own, in
the inbox's state folder) and tries them at once: a destination that is down
loses nothing (the outbox is retried while the app runs and at the next start), a
destination that refuses them is shown as REFUSED in the "Sent" column.

Self-contained: the main window only adds the dock and connects
`studyOpened(str)` and `message(str)`.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import (QModelIndex, QObject, QSortFilterProxyModel, Qt, QThreadPool,
                            QTimer, Signal)
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (QDockWidget, QFileDialog, QHBoxLayout, QHeaderView, QLabel,
                               QPushButton, QVBoxLayout, QWidget)

from core.pacs.sending import deliver_due, send_study, study_deliveries
from desktop.pacs_settings import ListenerController, PacsSettings, PacsSettingsDialog
from desktop.tables import FixedColumnsModel, row_table
from desktop.workers import create_worker, start_worker

POLL_MS = 2000
COLUMNS = ("Patient", "Patient ID", "Study date", "Images", "AI result", "Sent", "Status")
COL_PATIENT, COL_PATIENT_ID, COL_DATE, COL_IMAGES, COL_AI, COL_SENT, COL_STATUS = range(len(COLUMNS))
SORT_ROLE = Qt.ItemDataRole.UserRole + 1
FOLDER_ROLE = Qt.ItemDataRole.UserRole + 2


class InboxTableModel(FixedColumnsModel):
    columns = COLUMNS

    def __init__(self, settings: PacsSettings, parent: QObject | None = None):
        super().__init__(parent)
        self.settings = settings
        self._rows: list = []  # core.pacs.inbox_summary.StudySummary
        self._deliveries: dict = {}  # study UID -> core.pacs.outbox.StudyDelivery

    def row_count(self) -> int:
        return len(self._rows)

    def study(self, row: int):
        return self._rows[row]

    def unread(self, row: int) -> bool:
        study = self._rows[row]
        return self.settings.is_unread(study.study_uid, study.images)

    def data(self, index: QModelIndex, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        study, column = self._rows[index.row()], index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            values = (study.patient or "(no name)", study.patient_id, study.study_date, study.images,
                      study.ai_result, self.delivery_text(index.row()),
                      "Unread" if self.unread(index.row()) else "Read")
            return values[column]
        if role == SORT_ROLE:
            return study.received if column in (COL_PATIENT, COL_STATUS) else self.data(index)
        if role == Qt.ItemDataRole.ForegroundRole and column == COL_SENT and \
                "REFUSED" in self.delivery_text(index.row()):
            return QBrush(QColor("#b00020"))
        if role == Qt.ItemDataRole.FontRole and self.unread(index.row()):
            font = QFont()
            font.setBold(True)
            return font
        if role == Qt.ItemDataRole.ToolTipRole:
            sent = self.delivery_text(index.row())
            return f"Study {study.study_uid}\n{study.folder}" + (f"\nSent to PACS: {sent}" if sent else "")
        if role == FOLDER_ROLE:
            return study.folder
        return None

    def update(self, summaries: list) -> None:
        """Apply a fresh summary in place: update, insert, remove rows (no reset)."""
        fresh = {s.study_uid: s for s in summaries}
        for row in range(len(self._rows) - 1, -1, -1):
            if self._rows[row].study_uid not in fresh:
                self.beginRemoveRows(QModelIndex(), row, row)
                del self._rows[row]
                self.endRemoveRows()
        known = {s.study_uid: i for i, s in enumerate(self._rows)}
        for uid, summary in fresh.items():
            row = known.get(uid)
            if row is None:
                self.beginInsertRows(QModelIndex(), len(self._rows), len(self._rows))
                self._rows.append(summary)
                self.endInsertRows()
            elif self._rows[row] != summary:
                self._rows[row] = summary
                self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))

    def delivery_text(self, row: int) -> str:
        state = self._deliveries.get(self._rows[row].study_uid)
        return state.text if state is not None else ""

    def set_deliveries(self, deliveries: dict) -> None:
        if deliveries != self._deliveries:
            self._deliveries = dict(deliveries)
            if self._rows:
                self.dataChanged.emit(self.index(0, COL_SENT), self.index(len(self._rows) - 1, COL_SENT))

    def refresh_read_state(self, row: int) -> None:
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))


class InboxPanel(QDockWidget):
    studyOpened = Signal(str)  # study folder, to open like any folder
    message = Signal(str)  # one line for the status bar

    def __init__(self, settings: PacsSettings | None = None, parent: QWidget | None = None, poll_ms: int = POLL_MS,
                 controller: ListenerController | None = None):
        super().__init__("Inbox", parent)
        self.setObjectName("inboxDock")
        self.settings = settings or PacsSettings()
        self.controller = controller or ListenerController(self.settings, self)
        self.model = InboxTableModel(self.settings, self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(2)  # one poll + one export/send at a time
        self._summariser = None  # core.pacs.inbox_summary.InboxSummariser, built on the worker
        self._summariser_key = None
        self._model_hash: str | None = None
        self._polling = False
        self._delivering = False
        self._closed = False
        self._build_ui()
        self.message.connect(self.status.setText)
        self.controller.started.connect(self._listener_started)
        self.controller.stopped.connect(self._listener_stopped)
        self.controller.failed.connect(self._listener_failed)
        self.controller.result_ready.connect(lambda _path: self.poll())
        self.timer = QTimer(self, interval=poll_ms, timeout=self.poll)
        self.timer.start()
        QTimer.singleShot(0, self.poll)

    def _build_ui(self) -> None:
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(4, 4, 4, 4)
        self.table = row_table(body, self.proxy, "inboxTable")
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.DescendingOrder)  # newest received first
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)  # "PNEUMONIA 3/12, screening…"
        header.setSectionResizeMode(COL_SENT, QHeaderView.ResizeMode.Stretch)  # a refusal's reason: tooltip too
        self.table.doubleClicked.connect(lambda index: self.open_study(self.proxy.mapToSource(index).row()))
        layout.addWidget(self.table, 1)
        buttons = QHBoxLayout()
        self.open_button = QPushButton("Open", clicked=lambda: self._with_selected(self.open_study))
        self.read_button = QPushButton("Mark read/unread", clicked=lambda: self._with_selected(self.toggle_read))
        self.send_button = QPushButton("Send results to PACS",
                                       clicked=lambda: self._with_selected(lambda r: self.send_results(r)))
        self.export_button = QPushButton("Export DICOM…", clicked=lambda: self._with_selected(self._ask_export))
        for button in (self.open_button, self.read_button, self.send_button, self.export_button):
            buttons.addWidget(button)
        layout.addLayout(buttons)
        listener = QHBoxLayout()
        self.listen_button = QPushButton("Start listener", clicked=self.toggle_listener)
        self.settings_button = QPushButton("PACS settings…", clicked=self.edit_settings)
        self.status = QLabel("Listener stopped")
        self.status.setWordWrap(True)
        listener.addWidget(self.listen_button)
        listener.addWidget(self.settings_button)
        listener.addWidget(self.status, 1)
        layout.addLayout(listener)
        self.setWidget(body)

    # -- polling ---------------------------------------------------------------

    def set_model_hash(self, model_hash: str | None) -> None:
        """Whose results the AI column shows (the listener's model once it runs)."""
        self._model_hash = model_hash or None
        self.poll()

    def poll(self) -> None:
        if self._polling:
            return  # the previous poll is still running: never pile up
        self._polling = True
        inbox, model_hash, model = self.settings.inbox, self._model_hash, self.settings.model
        key = (inbox, model_hash, model)
        summariser = self._summariser if self._summariser_key == key else None

        def work():
            from core.pacs.inbox_summary import InboxSummariser
            from core.reading.store import ResultStore

            if not Path(inbox).is_dir():
                return key, None, [], {}
            worker = summariser or InboxSummariser(inbox, ResultStore(), model_hash or _default_model_hash(model))
            return key, worker, worker.summaries(), study_deliveries(inbox)

        self._submit(work, self._apply_poll, lambda error: self._poll_failed(error), "Reading the Inbox")

    def _apply_poll(self, outcome) -> None:
        key, summariser, summaries, deliveries = outcome
        self._polling = False
        self._summariser, self._summariser_key = summariser, key  # reused next time: headers are cached
        self.model.update(summaries)
        self.model.set_deliveries(deliveries)
        if not self.controller.running and any(d.waiting and not d.next_try_in for d in deliveries.values()):
            self._deliver()  # no listener to do it: results waiting in the outbox are tried when due

    def _poll_failed(self, error: str) -> None:
        self._polling = False
        self.message.emit(f"Inbox could not be read: {error}")

    # -- actions -----------------------------------------------------------------

    def _with_selected(self, action) -> None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            self.message.emit("Select a study first")
            return
        action(self.proxy.mapToSource(rows[0]).row())

    def open_study(self, row: int) -> None:
        study = self.model.study(row)
        self.settings.mark_read(study.study_uid, study.images)
        self.model.refresh_read_state(row)
        self.studyOpened.emit(study.folder)

    def toggle_read(self, row: int) -> None:
        study = self.model.study(row)
        self.settings.mark_read(study.study_uid, study.images, read=self.model.unread(row))
        self.model.refresh_read_state(row)

    def _ask_export(self, row: int) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export DICOM results to")
        if folder:
            self.export_dicom(row, folder)

    def export_dicom(self, row: int, out_dir: str) -> None:
        """SR + secondary capture of every image of the study, written under out_dir."""
        folder, model = self.model.study(row).folder, self.settings.model or None

        def work():
            from core.pacs.export import write_objects
            written = write_objects(_build_results(folder, model), out_dir)
            return f"Exported {len(written)} DICOM object(s) to {out_dir}"

        self.message.emit("Exporting DICOM results…")
        self._submit(work, self.message.emit, lambda e: self.message.emit(f"Export failed: {e}"))

    def send_results(self, row: int, destination: str | None = None) -> None:
        """SR + secondary capture of every image of the study, queued in the outbox and tried now."""
        from core.pacs.nodes import InvalidIdentifier, parse_node

        try:
            node = parse_node(destination or self.settings.destination)
        except InvalidIdentifier as exc:
            self.message.emit(f"Set a destination (AET@HOST:PORT) in PACS settings first: {exc}")
            return
        study = self.model.study(row)
        folder, model, calling, inbox = study.folder, self.settings.model or None, self.settings.ae_title, \
            self.settings.inbox

        def work():
            return send_study(_build_results(folder, model), node, calling, inbox, study.study_uid)

        self.message.emit(f"Sending results to {node}…")
        self._submit(work, self._sent, lambda e: self.message.emit(f"Sending failed: {e}"), "Sending results to PACS")

    def _sent(self, text: str) -> None:
        self.message.emit(text)
        self.poll()  # the "Sent" column follows

    def _deliver(self) -> None:
        """One delivery pass over what is due in the outbox (the listener, when it runs, does this)."""
        if self._delivering:
            return
        self._delivering = True
        inbox, calling = self.settings.inbox, self.settings.ae_title

        def done(_sent) -> None:
            self._delivering = False

        def failed(error: str) -> None:
            self._delivering = False
            self.message.emit(f"Delivering waiting results failed: {error}")

        self._submit(lambda: deliver_due(inbox, calling), done, failed, "Delivering waiting results")

    def edit_settings(self) -> None:
        if PacsSettingsDialog(self.settings, self).exec():
            self.poll()
            if self.controller.running:
                self.message.emit("Settings saved; restart the listener to use them")

    # -- listener ----------------------------------------------------------------

    def toggle_listener(self) -> None:
        self.listen_button.setEnabled(False)
        if self.controller.running:
            self.message.emit("Stopping the listener (finishing transfers and screening)…")
            self.controller.stop()
        else:
            self.message.emit("Starting the listener (loading the model)…")
            self.controller.start()

    def _listener_started(self, port: int, model_hash: str) -> None:
        self.listen_button.setEnabled(True)
        self.listen_button.setText("Stop listener")
        self.message.emit(f"Listening as {self.settings.ae_title} on {self.settings.bind}:{port}")
        self.set_model_hash(model_hash)

    def _listener_stopped(self) -> None:
        self.listen_button.setEnabled(True)
        self.listen_button.setText("Start listener")
        self.message.emit("Listener stopped")

    def _listener_failed(self, message: str) -> None:
        self.listen_button.setEnabled(True)
        self.listen_button.setText("Start listener")
        self.message.emit(message)

    def shutdown(self) -> None:
        """Stop polling and the listener; returns at once (the GUI thread never waits).
        In-flight work finishes in the background (desktop.background); queued jobs are dropped,
        then the summariser's results store is closed on the pool (after any poll still running)."""
        from desktop.background import retire_pool

        if self._closed:
            return
        self._closed = True
        self.timer.stop()
        self.controller.shutdown()
        self._pool.clear()
        self._pool.setMaxThreadCount(1)  # the close below runs after a poll still in flight
        summariser, self._summariser = self._summariser, None
        if summariser is not None:
            self._pool.start(summariser.store.close)
        retire_pool(self._pool, keep_queued=True)

    def _submit(self, work, on_done, on_failed, context: str = "Inbox") -> None:
        """`work()` on the Inbox's pool (desktop.workers): the outcome and any error (logged,
        then shown in the panel by `on_failed`) arrive on the GUI thread."""
        if self._closed:
            return
        worker = create_worker(work)
        worker.returned.connect(on_done)
        start_worker(worker, self._pool, context, on_failed)


def _default_model_hash(model: str | None) -> str | None:
    """The configured model's hash from its card (no TensorFlow), None when there is none."""
    from core.models.registry import ModelError, find_model

    try:
        return find_model(model or None).card.sha256 or None
    except ModelError:
        return None


def _build_results(folder: str, model: str | None):
    from core.pacs.export import build_study_results
    from core.pacs.screening_adapter import ScreeningAdapter
    from core.reading.store import ResultStore

    with ResultStore() as store:
        return build_study_results(folder, ScreeningAdapter(model), store)
