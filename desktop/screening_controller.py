"""Runs the study job (core.reading.study_job) on a superqt worker for the main window, one
study at a time; thumbnails become QImages on the worker thread, so the GUI thread only places them.

Starting another study (or model) drops the running job without waiting: it is
cancelled, ends at its next yield, and whatever it still reports is ignored.
"""
from __future__ import annotations

import threading

from PySide6.QtCore import QObject, Signal, Slot

from core.reading.study_job import StudyRequest
from core.reading.study_job import study_job as core_study_job
from desktop.workers import create_worker, grey_to_qimage, launch, report_error


def study_job(request: StudyRequest, cancel: threading.Event):
    """A generator function (superqt runs it as a generator worker)."""
    return (yield from core_study_job(request, cancel, thumbnail_image=grey_to_qimage))


class _Relay(QObject):
    """One job's reports, forwarded until discarded (bound slots: queued to the GUI thread)."""

    def __init__(self, owner: "StudyScreening"):
        super().__init__(owner)
        self.owner, self.discarded = owner, False

    @Slot(object)
    def on_yield(self, event) -> None:
        if not self.discarded:
            self.owner.event.emit(*event)

    @Slot(object)
    def on_return(self, summary) -> None:
        if not self.discarded:
            self.owner.finish(summary)

    @Slot(object)
    def on_error(self, exc) -> None:
        # Logged always; shown by the window's "Screening stopped" notice unless discarded.
        message = report_error(exc, "Screening the study", lambda _message: None)
        if not self.discarded:
            self.owner.fail(message)


class StudyScreening(QObject):
    event = Signal(str, object)  # core.reading.study_job events
    finished = Signal(dict)  # summary
    failed = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._relay: _Relay | None = None
        self._cancel: threading.Event | None = None

    @property
    def running(self) -> bool:
        return self._relay is not None

    def start(self, request: StudyRequest) -> None:
        self.stop()
        self._cancel = threading.Event()
        self._relay = relay = _Relay(self)
        worker = create_worker(study_job, request, self._cancel)
        worker.yielded.connect(relay.on_yield)
        worker.returned.connect(relay.on_return)
        worker.errored.connect(relay.on_error)
        launch(worker)

    def cancel(self) -> None:
        """Stop screening; the job still reports its summary (within one batch)."""
        if self._cancel is not None:
            self._cancel.set()

    def stop(self) -> None:
        """Drop the running job without waiting: cancelled, its late reports ignored."""
        if self._relay is not None:
            self._relay.discarded = True
            self._relay.deleteLater()
            self._relay = None
        if self._cancel is not None:
            self._cancel.set()

    def finish(self, summary: dict) -> None:
        self._relay = None
        self.finished.emit(summary)

    def fail(self, message: str) -> None:
        self._relay = None
        self.failed.emit(message)
