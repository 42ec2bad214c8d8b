"""PACS settings (QSettings) and the in-app listener, run off the GUI thread.

- `PacsSettings`: port, AE title, inbox folder, destination, calling-AE
  allow-list, bind address, model; plus which inbox studies were read.
- `PacsSettingsDialog`: edits them, refusing invalid AE titles and nodes with
  the same checks the CLI uses.
- `ListenerController`: starts / stops a `core.pacs.service.PacsService` on its
  own one-thread pool (loading the model and finishing in-flight work both take time).
"""
from __future__ import annotations

import json

from PySide6.QtCore import QObject, QSettings, QThreadPool, Signal
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel,
                               QLineEdit, QMessageBox, QPushButton, QSpinBox, QWidget)

from core.paths import user_data_dir
from core.logs import get_logger
from desktop.workers import create_worker, gui_owned, start_worker

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


def _stop_quietly(services: list) -> None:
    """Stop what the listener started (application exit: nobody is left to tell)."""
    for service in services:
        try:
            service.stop()
        except Exception:
            get_logger("pacs").exception("the PACS listener did not stop cleanly")


def _make_service(config, on_result):
    """The PACS service the in-app listener runs (tests replace it)."""
    from core.pacs.service import PacsService

    return PacsService(config, on_result=on_result)


class _ResultRelay(QObject):
    """Carries "a file was screened" from the service's thread to the GUI thread."""
    result_ready = Signal(str)


class ListenerController(QObject):
    """The in-app listener: `start()` / `stop()` return at once; signals report the outcome.

    Starting (loading the model, opening the port) and stopping (finishing in-flight
    transfers and screening) run as jobs on the listener's own one-thread pool through
    desktop.workers, so a failure is logged and reported (`failed`) like any job's.
    """

    started = Signal(int, str)  # port, model hash
    stopped = Signal()
    failed = Signal(str)
    result_ready = Signal(str)

    def __init__(self, settings: PacsSettings, parent: QObject | None = None):
        super().__init__(parent)
        self.settings = settings
        self._pool = self._new_pool()
        self._service = None
        self._busy = False  # a start or stop job is running
        self._started_services: list = []
        self.running = False

    def _new_pool(self) -> QThreadPool:
        pool = QThreadPool(self)
        pool.setObjectName("pneumoscan-pacs-listener")
        pool.setMaxThreadCount(1)  # start and stop in order
        return pool

    def start(self) -> None:
        from core.pacs.nodes import InvalidIdentifier

        if self._busy or self._service is not None:
            return
        try:
            config = self.settings.service_config()
        except InvalidIdentifier as exc:
            self.failed.emit(str(exc))
            return
        relay = gui_owned(_ResultRelay())
        relay.result_ready.connect(self.result_ready)
        self._started_services = started = []  # what shutdown() must stop if it comes mid-start

        def start_service():
            service = _make_service(config, lambda path, _result: relay.result_ready.emit(str(path)))
            service.start()
            started.append(service)
            return service

        self._run(start_service, self._on_started, "Starting the PACS listener",
                  lambda message: self._on_failed(f"the listener could not start: {message}"))

    def stop(self) -> None:
        service = self._service
        if service is None or self._busy:
            return
        self._run(service.stop, lambda _none: self._on_stopped(), "Stopping the PACS listener", self._on_failed)

    def _run(self, fn, on_done, context: str, on_error) -> None:
        self._busy = True
        worker = create_worker(fn)
        worker.returned.connect(on_done)
        start_worker(worker, self._pool, context, on_error)

    def shutdown(self) -> None:
        """Stop for application exit without waiting: the service stops on the listener's
        pool (in-flight transfers finish); desktop.background keeps the pool alive meanwhile
        and the app waits for it only after its windows have gone."""
        from desktop.background import retire_pool

        pool, started = self._pool, self._started_services
        self._service, self.running, self._busy = None, False, False
        # Queued behind a start job still running: whatever it started is stopped too.
        pool.start(lambda: _stop_quietly(started))
        retire_pool(pool, keep_queued=True)
        self._pool, self._started_services = self._new_pool(), []

    def _on_started(self, service) -> None:
        self._busy = False
        self._service = service
        self.running = True
        self.started.emit(service.port, service.model_hash)

    def _on_failed(self, message: str) -> None:
        self._busy = False
        self._service, self.running = None, False
        self.failed.emit(message)

    def _on_stopped(self) -> None:
        self._busy = False
        self._service, self.running = None, False
        self.stopped.emit()
