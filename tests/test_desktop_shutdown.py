"""The GUI thread never waits: closing the window with the in-app listener running, and
closing a wizard while a model is being saved, return at once; the work ends on its own."""
from __future__ import annotations

import threading

from PySide6.QtCore import QObject, QSettings

import desktop.pacs_settings
from desktop import background
from desktop.main_window import MainWindow
from desktop.settings import AppSettings
from desktop.training_worker import let_finish, start_job


class BlockedStopService:
    """Stands in for the PACS service: starts at once; its stop (transfers in progress
    finishing) blocks until the test releases it, so "closing did not wait" needs no clock."""
    release = threading.Event()
    stops: list = []

    def __init__(self, config, on_result=None):
        self.config, self.port, self.model_hash = config, 11112, "f" * 64

    def start(self) -> None:
        pass

    def stop(self) -> None:
        BlockedStopService.release.wait(30)
        BlockedStopService.stops.append(threading.current_thread() is not threading.main_thread())


def test_closing_the_window_with_the_listener_running_never_waits_for_it(qtbot, monkeypatch, tmp_path):
    monkeypatch.setattr(desktop.pacs_settings, "_make_service", BlockedStopService)
    BlockedStopService.stops.clear()
    BlockedStopService.release.clear()
    window = MainWindow(AppSettings(), store_path=tmp_path / "store.sqlite3", quiet=True)
    qtbot.addWidget(window)
    window.inbox.settings = desktop.pacs_settings.PacsSettings(
        QSettings(str(tmp_path / "pacs.ini"), QSettings.Format.IniFormat))
    window.inbox.controller.settings = window.inbox.settings
    window.show()
    with qtbot.waitSignal(window.inbox.controller.started, timeout=10_000):
        window.inbox.toggle_listener()
    assert window.inbox.controller.running
    window.close()  # returns although the service's stop is blocked: the GUI thread did not wait
    assert BlockedStopService.stops == []
    assert background.pending() >= 1  # the stop goes on, kept alive by desktop.background
    BlockedStopService.release.set()
    assert background.finish_background(timeout_s=20)  # what the app does after its event loop
    assert BlockedStopService.stops == [True]  # stopped on the listener's thread


def test_a_model_save_outlives_its_closed_dialog_without_a_wait(qtbot):
    owner = QObject()
    release, saved, delivered = threading.Event(), [], []
    job = start_job(lambda report, cancel: (release.wait(10), saved.append("model written"))[1], "save", owner,
                    on_success=delivered.append)
    let_finish(job)  # returns while the job is blocked: no wait
    owner.deleteLater()
    assert job.parent() is None and saved == []
    release.set()
    qtbot.waitUntil(lambda: saved == ["model written"], timeout=10_000)
    assert job.wait(10_000) and delivered == []  # finished, reporting to nobody
