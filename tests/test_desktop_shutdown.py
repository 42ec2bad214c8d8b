"""The GUI thread never waits: closing the window with the in-app listener running, and
closing a wizard while a model is being saved, return at once; the work ends on its own."""
from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"
os.environ["PNEUMOSCAN_NO_FIRST_RUN"] = "1"

import threading  # noqa: E402
import time  # noqa: E402

from PySide6.QtCore import QObject, QSettings, Signal, Slot  # noqa: E402

import desktop.pacs_settings  # noqa: E402
from desktop import background  # noqa: E402
from desktop.main_window import MainWindow  # noqa: E402
from desktop.settings import AppSettings  # noqa: E402
from desktop.training_worker import let_finish, start_job  # noqa: E402

SLOW_STOP_S = 3.0


class SlowListenerWorker(QObject):
    """Stands in for the PACS service worker: starts at once, takes seconds to drain on stop."""
    started = Signal(int, str)
    stopped = Signal()
    failed = Signal(str)
    result_ready = Signal(str)
    stops: list = []

    def __init__(self, config):
        super().__init__()
        self.config = config

    @Slot()
    def start(self) -> None:
        self.started.emit(11112, "f" * 64)

    @Slot()
    def stop(self) -> None:
        time.sleep(SLOW_STOP_S)  # transfers in progress finishing
        SlowListenerWorker.stops.append(threading.current_thread() is not threading.main_thread())
        self.stopped.emit()


def test_closing_the_window_with_the_listener_running_returns_quickly(qtbot, monkeypatch, tmp_path):
    monkeypatch.setattr(desktop.pacs_settings, "_ServiceWorker", SlowListenerWorker)
    SlowListenerWorker.stops.clear()
    window = MainWindow(AppSettings(), store_path=tmp_path / "store.sqlite3", quiet=True)
    qtbot.addWidget(window)
    window.inbox.settings = desktop.pacs_settings.PacsSettings(
        QSettings(str(tmp_path / "pacs.ini"), QSettings.Format.IniFormat))
    window.inbox.controller.settings = window.inbox.settings
    window.show()
    with qtbot.waitSignal(window.inbox.controller.started, timeout=10_000):
        window.inbox.toggle_listener()
    assert window.inbox.controller.running
    start = time.monotonic()
    window.close()
    assert time.monotonic() - start < 2.0
    assert SlowListenerWorker.stops == []  # still draining, on its own thread
    assert background.pending() >= 1
    assert background.finish_background(timeout_s=20)  # what the app does after its event loop
    assert SlowListenerWorker.stops == [True]


def test_a_model_save_outlives_its_closed_dialog_without_a_wait(qtbot):
    owner = QObject()
    release, saved, delivered = threading.Event(), [], []
    job = start_job(lambda report, cancel: (release.wait(10), saved.append("model written"))[1], "save", owner,
                    on_success=delivered.append)
    start = time.monotonic()
    let_finish(job)
    owner.deleteLater()
    assert time.monotonic() - start < 0.5 and job.parent() is None
    release.set()
    qtbot.waitUntil(lambda: saved == ["model written"], timeout=10_000)
    assert job.wait(10_000) and delivered == []  # finished, reporting to nobody
