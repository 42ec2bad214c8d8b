"""PACS settings (QSettings) and the in-app listener, run off the GUI thread.

- `PacsSettings`: port, AE title, inbox folder, destination, calling-AE
  allow-list, bind address, model; plus which inbox studies were read.
- `PacsSettingsDialog`: edits them, refusing invalid AE titles and nodes with
  the same checks the CLI uses.
- `ListenerController`: starts / stops a `core.pacs.service.PacsService` on its
  own QThread (loading the model and finishing in-flight work both take time).
"""
from __future__ import annotations

import json

from PySide6.QtCore import QMetaObject, QObject, QSettings, Qt, QThread, Signal, Slot
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel,
                               QLineEdit, QMessageBox, QPushButton, QSpinBox, QWidget)

from core.paths import user_data_dir

DEFAULT_PORT = 11112
DEFAULT_AE_TITLE = "PNEUMOSCAN"
DEFAULT_BIND = "127.0.0.1"

_PREFIX = "pacs/"


class PacsSettings:
    """Typed accessors over the app's settings file (same INI as desktop.settings)."""

    def __init__(self, qsettings: QSettings | None = None):
        self._qs = qsettings or QSettings(str(user_data_dir() / "settings.ini"), QSettings.Format.IniFormat)
        self._read_cache: dict[str, int] | None = None

    def _get(self, key: str, default):
        value = self._qs.value(_PREFIX + key)
        return default if value in (None, "") else value

    def _set(self, key: str, value) -> None:
        self._qs.setValue(_PREFIX + key, value)
        self._qs.sync()

    port = property(lambda self: int(self._get("port", DEFAULT_PORT)), lambda self, v: self._set("port", int(v)))
    ae_title = property(lambda self: str(self._get("ae_title", DEFAULT_AE_TITLE)),
                        lambda self, v: self._set("ae_title", str(v)))
    inbox = property(lambda self: str(self._get("inbox", str(user_data_dir() / "inbox"))),
                     lambda self, v: self._set("inbox", str(v)))
    destination = property(lambda self: str(self._get("destination", "")),
                           lambda self, v: self._set("destination", str(v)))
    bind = property(lambda self: str(self._get("bind", DEFAULT_BIND)), lambda self, v: self._set("bind", str(v)))
    model = property(lambda self: str(self._get("model", "")), lambda self, v: self._set("model", str(v)))

    @property
    def allow_calling(self) -> list[str]:
        return [aet for aet in str(self._get("allow_calling", "")).split() if aet]

    @allow_calling.setter
    def allow_calling(self, titles) -> None:
        self._set("allow_calling", " ".join(titles))

    # -- read / unread: study UID -> images seen when it was last opened -------

    def _read_map(self) -> dict[str, int]:
        # Parsed once, then kept: the table asks for every cell it paints.
        if self._read_cache is None:
            try:
                self._read_cache = {str(k): int(v) for k, v in json.loads(self._get("read_studies", "{}")).items()}
            except (ValueError, TypeError, AttributeError):
                self._read_cache = {}
        return self._read_cache

    def is_unread(self, study_uid: str, images: int) -> bool:
        """Unread until opened, and again when more images arrive afterwards."""
        return self._read_map().get(study_uid, -1) < images

    def mark_read(self, study_uid: str, images: int, read: bool = True) -> None:
        seen = dict(self._read_map())
        if read:
            seen[study_uid] = images
        else:
            seen.pop(study_uid, None)
        self._set("read_studies", json.dumps(seen))
        self._read_cache = seen

    def service_config(self):
        """A core.pacs.service.ServiceConfig from these settings (InvalidIdentifier when one is wrong)."""
        from core.pacs.listener import ListenerConfig
        from core.pacs.nodes import parse_node
        from core.pacs.service import ServiceConfig

        return ServiceConfig(
            listener=ListenerConfig(self.port, self.ae_title, self.bind, self.allow_calling),
            inbox=self.inbox, model=self.model or None,
            send_results_to=parse_node(self.destination) if self.destination else None)


class PacsSettingsDialog(QDialog):
    def __init__(self, settings: PacsSettings, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("PACS settings")
        self.settings = settings
        self.port = QSpinBox(minimum=1, maximum=65535, value=settings.port)
        self.ae_title = QLineEdit(settings.ae_title, maxLength=16)
        self.inbox = QLineEdit(settings.inbox)
        browse = QPushButton("Browse…", clicked=self._browse)
        inbox_row = QHBoxLayout()
        inbox_row.addWidget(self.inbox, 1)
        inbox_row.addWidget(browse)
        self.destination = QLineEdit(settings.destination, placeholderText="AET@HOST:PORT (empty: do not send)")
        self.allow_calling = QLineEdit(" ".join(settings.allow_calling), placeholderText="empty: any calling AE")
        self.bind = QLineEdit(settings.bind)
        self.model = QLineEdit(settings.model, placeholderText="empty: the default model")
        form = QFormLayout(self)
        form.addRow("Port", self.port)
        form.addRow("AE title", self.ae_title)
        form.addRow("Inbox folder", inbox_row)
        form.addRow("Send results to", self.destination)
        form.addRow("Allowed calling AE titles", self.allow_calling)
        form.addRow("Listen on address", self.bind)
        form.addRow("Model", self.model)
        form.addRow(QLabel("127.0.0.1 accepts this computer only; 0.0.0.0 opens the node to the network."))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Inbox folder", self.inbox.text())
        if folder:
            self.inbox.setText(folder)

    def validate(self) -> str | None:
        """None when every field is acceptable, else the message to show."""
        from core.pacs.nodes import InvalidIdentifier, check_ae_title, parse_node

        try:
            check_ae_title(self.ae_title.text())
            for aet in self.allow_calling.text().split():
                check_ae_title(aet, "allowed calling AE title")
            if self.destination.text().strip():
                parse_node(self.destination.text().strip())
        except InvalidIdentifier as exc:
            return str(exc)
        if not self.inbox.text().strip():
            return "choose an inbox folder"
        return None

    def accept(self) -> None:
        problem = self.validate()
        if problem:
            QMessageBox.warning(self, "PACS settings", problem)
            return
        s = self.settings
        s.port, s.ae_title, s.inbox = self.port.value(), self.ae_title.text().strip(), self.inbox.text().strip()
        s.destination, s.bind, s.model = self.destination.text().strip(), self.bind.text().strip(), self.model.text()
        s.allow_calling = self.allow_calling.text().split()
        super().accept()


class _ServiceWorker(QObject):
    started = Signal(int, str)  # port, model hash
    stopped = Signal()
    failed = Signal(str)
    result_ready = Signal(str)  # path of a screened file

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.service = None

    @Slot()
    def start(self) -> None:
        from core.pacs.service import PacsService

        try:
            service = PacsService(self.config, on_result=lambda path, result: self.result_ready.emit(str(path)))
            service.start()
        except Exception as exc:  # model, store or port: say which, never crash the app
            self.failed.emit(f"the listener could not start: {exc}")
            return
        self.service = service
        self.started.emit(service.port, service.model_hash)

    @Slot()
    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()
            self.service = None
        self.stopped.emit()


class ListenerController(QObject):
    """The in-app listener: `start()` / `stop()` return at once; signals report the outcome."""

    started = Signal(int, str)  # port, model hash
    stopped = Signal()
    failed = Signal(str)
    result_ready = Signal(str)
    _start_requested = Signal()
    _stop_requested = Signal()

    def __init__(self, settings: PacsSettings, parent: QObject | None = None):
        super().__init__(parent)
        self.settings = settings
        self._thread: QThread | None = None
        self._worker: _ServiceWorker | None = None
        self.running = False

    def start(self) -> None:
        from core.pacs.nodes import InvalidIdentifier

        if self._thread is not None:
            return
        try:
            config = self.settings.service_config()
        except InvalidIdentifier as exc:
            self.failed.emit(str(exc))
            return
        self._thread = QThread()
        self._thread.setObjectName("pneumoscan-pacs-listener")
        self._worker = _ServiceWorker(config)
        self._worker.moveToThread(self._thread)
        self._start_requested.connect(self._worker.start)
        self._stop_requested.connect(self._worker.stop)
        self._worker.started.connect(self._on_started)
        self._worker.failed.connect(self._on_failed)
        self._worker.stopped.connect(self._on_stopped)
        self._worker.result_ready.connect(self.result_ready)
        self._thread.start()
        self._start_requested.emit()

    def stop(self) -> None:
        if self._thread is not None:
            self._stop_requested.emit()

    def shutdown(self, timeout_ms: int = 120_000) -> None:
        """Blocking stop for application exit: in-flight work finishes first."""
        if self._thread is None:
            return
        worker, thread = self._worker, self._thread
        self._worker = self._thread = None
        self.running = False
        QMetaObject.invokeMethod(worker, "stop", Qt.ConnectionType.BlockingQueuedConnection)
        thread.quit()
        thread.wait(timeout_ms)

    def _on_started(self, port: int, model_hash: str) -> None:
        self.running = True
        self.started.emit(port, model_hash)

    def _on_failed(self, message: str) -> None:
        self._end_thread()
        self.failed.emit(message)

    def _on_stopped(self) -> None:
        self._end_thread()
        self.stopped.emit()

    def _end_thread(self) -> None:
        self.running = False
        if self._thread is not None:
            self._thread.quit()
            self._thread.wait()
            self._thread, self._worker = None, None
