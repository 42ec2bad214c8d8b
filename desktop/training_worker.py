"""Background jobs for the training wizard and the model manager.

`BackgroundJob` runs `fn(report, cancel)` on its own QThread (a QObject worker
moved to the thread), never on the shared QThreadPool: a training run holds a
thread for minutes and the pool has only as many threads as cores, so it would
starve the main window's image loading.

Signals reach the GUI thread through relay slots of an object that lives
there; connect wizard code to `BackgroundJob`'s own signals only.

`run_training` adapts `core.training.train` (callbacks + cancel event) to the
report function, so the wizard drives exactly the code `pneumoscan-cli train`
runs.
"""
from __future__ import annotations

import threading
import traceback
from typing import Callable

from PySide6.QtCore import QObject, QThread, Signal, Slot

Report = Callable[[object], None]
# Jobs whose thread still runs: a QThread destroyed while running aborts the process.
_live_jobs: set = set()


def readable_error(exc: BaseException) -> str:
    """A message for a person: core errors carry one; others get their type too."""
    message = getattr(exc, "message", None) or str(exc)
    known = type(exc).__module__.startswith("core.")
    return message if (known and message) else f"{type(exc).__name__}: {message or 'no details'}"


class _Worker(QObject):
    progress = Signal(object)
    succeeded = Signal(object)
    failed = Signal(str)
    cancelled = Signal()

    def __init__(self, fn, cancel_event: threading.Event):
        super().__init__()
        self._fn = fn
        self._cancel = cancel_event

    @Slot()
    def run(self) -> None:
        try:
            result = self._fn(self.progress.emit, self._cancel)
        except Exception as exc:  # reported in the wizard, never raised into Qt
            if self._cancel.is_set():
                self.cancelled.emit()  # e.g. core.training.TrainingCancelled
            else:
                if not type(exc).__module__.startswith("core."):
                    traceback.print_exc()  # unexpected: keep the trace for a bug report
                self.failed.emit(readable_error(exc))
        else:
            # A result that lands after Cancel is dropped: the user asked for nothing.
            if self._cancel.is_set():
                self.cancelled.emit()
            else:
                self.succeeded.emit(result)
        finally:
            QThread.currentThread().quit()


class BackgroundJob(QObject):
    """One run of `fn(report, cancel)` on a dedicated thread.

    Exactly one of succeeded / failed / cancelled is emitted, then `done`,
    unless the job was discarded (its owner moved on).
    """

    progress = Signal(object)
    succeeded = Signal(object)
    failed = Signal(str)
    cancelled = Signal()
    done = Signal()
    ended = Signal()  # the thread has stopped (also for discarded jobs): safe to clean up

    def __init__(self, fn: Callable[[Report, threading.Event], object], name: str = "job", parent=None):
        super().__init__(parent)
        self.cancel_event = threading.Event()
        self.outcome: str | None = None  # "succeeded" | "failed" | "cancelled"
        self._discarded = False
        self._thread = QThread()
        self._thread.setObjectName(name)
        self._worker = _Worker(fn, self.cancel_event)
        self._worker.moveToThread(self._thread)
        self._thread.started.connect(self._worker.run)
        # Bound slots of this GUI-thread object: the worker's emits are queued here.
        self._worker.progress.connect(self._relay_progress)
        self._worker.succeeded.connect(self._relay_succeeded)
        self._worker.failed.connect(self._relay_failed)
        self._worker.cancelled.connect(self._relay_cancelled)
        self._thread.finished.connect(self._on_thread_finished)

    def start(self) -> "BackgroundJob":
        _live_jobs.add(self)
        self._thread.start()
        return self

    def is_running(self) -> bool:
        """True until the outcome has been delivered (or the thread ended, if discarded)."""
        if self._discarded:
            return self._thread.isRunning()
        return self.outcome is None

    def cancel(self) -> None:
        self.cancel_event.set()

    def discard(self) -> None:
        """Cancel and drop whatever it still reports (the caller moved on)."""
        self._discarded = True
        self.cancel_event.set()

    def wait(self, timeout_ms: int = 120_000) -> bool:
        """Block until the thread ends (closing the wizard must not leave it running)."""
        return self._thread.wait(timeout_ms)

    @Slot()
    def _on_thread_finished(self) -> None:
        _live_jobs.discard(self)
        self.ended.emit()

    @Slot(object)
    def _relay_progress(self, payload) -> None:
        if not self._discarded:
            self.progress.emit(payload)

    @Slot(object)
    def _relay_succeeded(self, result) -> None:
        self._finish("succeeded", self.succeeded, result)

    @Slot(str)
    def _relay_failed(self, message: str) -> None:
        self._finish("failed", self.failed, message)

    @Slot()
    def _relay_cancelled(self) -> None:
        self._finish("cancelled", self.cancelled)

    def _finish(self, outcome: str, signal, *args) -> None:
        self.outcome = outcome
        if not self._discarded:
            signal.emit(*args)
            self.done.emit()


def start_job(fn, name: str, parent=None, on_progress=None, on_success=None, on_failure=None,
              on_cancel=None) -> BackgroundJob:
    """Create, wire and start a job; callbacks run on the GUI thread."""
    job = BackgroundJob(fn, name, parent)
    for signal, slot in ((job.progress, on_progress), (job.succeeded, on_success),
                         (job.failed, on_failure), (job.cancelled, on_cancel)):
        if slot is not None:
            signal.connect(slot)
    return job.start()


# -- training ----------------------------------------------------------------

BATCH, EPOCH, LOG = "batch", "epoch", "log"


def run_training(config) -> Callable[[Report, threading.Event], object]:
    """A job function that trains `config` and returns the TrainOutcome.

    Reports ("batch", epoch, batch, steps, loss), ("epoch", epoch, record) and
    ("log", message). The cancel event goes straight to core.training, which
    checks it after every batch and raises TrainingCancelled; train() never
    touches the registry, so a cancelled run leaves no model behind.
    """
    def job(report: Report, cancel: threading.Event):
        from core.training import train

        def on_batch(epoch, batch, steps, logs):
            report((BATCH, epoch, batch, steps, logs.get("loss")))

        def on_epoch(epoch, record):
            report((EPOCH, epoch, dict(record)))

        return train(config, on_batch=on_batch, on_epoch=on_epoch, cancel=cancel,
                     log=lambda message: report((LOG, message)))

    return job


def _owned_by(obj: QObject, owner: QObject) -> bool:
    try:
        while obj is not None:
            if obj is owner:
                return True
            obj = obj.parent()
    except RuntimeError:  # its C++ side is already gone
        pass
    return False


def wait_for_jobs(owner: QObject, timeout_ms: int = 120_000) -> bool:
    """Discard every running job owned by `owner` (a dialog being closed) and wait
    for their threads, so none outlives the objects it reports to."""
    import time

    deadline = time.monotonic() + timeout_ms / 1000
    finished = True
    for job in [j for j in _live_jobs if _owned_by(j, owner)]:
        job.discard()
        left_ms = max(0, int((deadline - time.monotonic()) * 1000))
        if job.wait(left_ms):
            _live_jobs.discard(job)
        else:
            finished = False
    return finished
