"""Background jobs for the training wizard and the model manager.

`BackgroundJob` runs `fn(report, cancel)` as a superqt `FunctionWorker` on the
app's long-job pool (desktop.workers.long_pool), never on Qt's global pool: a
training run holds a thread for minutes and the global pool has only as many
threads as cores, so it would starve the main window's image loading.

Signals reach the GUI thread through relay slots of an object that lives
there; connect wizard code to `BackgroundJob`'s own signals only. Closing a
dialog never waits: `release_jobs(owner)` discards its jobs (cancelled, their
reports dropped) and they end on their own; `after_end(fn)` runs clean-up on
the worker thread once the job's function has returned.

`run_training` adapts `core.training.trainer.train` (callbacks + cancel event) to the
report function, so the wizard drives exactly the code `pneumoscan-cli train`
runs.
"""
from __future__ import annotations

import threading
from typing import Callable

from PySide6.QtCore import SIGNAL, QObject, Signal, Slot

from core.logs import get_logger
from desktop.workers import create_worker, gui_owned, launch, report_error

Report = Callable[[object], None]
SIGNAL_FAILED = SIGNAL("failed(QString)")
# Jobs whose function still runs (owners may be gone: the job object is kept alive here).
_live_jobs: set = set()


class _Reporter(QObject):
    """Carries `report(payload)` calls from the worker thread (queued to the GUI thread)."""
    progress = Signal(object)


class _RunState:
    """What the worker thread needs, without a reference back to the job: no cycle through a
    QObject, so the garbage collector never frees a job on a pool thread."""

    def __init__(self, report):
        self.report = report
        self.cancel_event = threading.Event()
        self.ended = threading.Event()
        self.lock = threading.Lock()
        self.after_end: list = []


def _run(state: _RunState, fn):
    try:
        return fn(state.report, state.cancel_event)
    finally:
        with state.lock:
            state.ended.set()
            callbacks, state.after_end = state.after_end, []
        for callback in callbacks:
            _call_quietly(callback)


class BackgroundJob(QObject):
    """One run of `fn(report, cancel)` on a worker thread.

    Exactly one of succeeded / failed / cancelled is emitted, then `done`,
    unless the job was discarded (its owner moved on).
    """

    progress = Signal(object)
    succeeded = Signal(object)
    failed = Signal(str)
    cancelled = Signal()
    done = Signal()
    ended = Signal()  # the function has returned (also for discarded jobs): safe to clean up

    def __init__(self, fn: Callable[[Report, threading.Event], object], name: str = "job", parent=None):
        super().__init__(parent)
        self.name = name
        self.outcome: str | None = None  # "succeeded" | "failed" | "cancelled"
        self._discarded = False
        # The reporter is emitted from the worker thread: owned by the GUI thread, deleted there.
        self._reporter = gui_owned(_Reporter())
        self._reporter.progress.connect(self._relay_progress)
        self._state = _RunState(self._reporter.progress.emit)
        self.cancel_event = self._state.cancel_event
        self._worker = create_worker(_run, self._state, fn)
        # Bound slots of this GUI-thread object: the worker's emits are queued here.
        self._worker.returned.connect(self._on_returned)
        self._worker.errored.connect(self._on_errored)
        self._worker.finished.connect(self._on_finished)

    def start(self) -> "BackgroundJob":
        _live_jobs.add(self)
        launch(self._worker)  # errors: _on_errored (cancellation is not an error)
        return self

    def is_running(self) -> bool:
        """True until the outcome has been delivered (or the function ended, if discarded)."""
        if self._discarded:
            return not self._state.ended.is_set()
        return self.outcome is None

    def cancel(self) -> None:
        self.cancel_event.set()

    def discard(self) -> None:
        """Cancel and drop whatever it still reports (the caller moved on)."""
        self._discarded = True
        self.cancel_event.set()

    def after_end(self, fn) -> None:
        """Run `fn()` once the job's function has returned (on the worker thread; at once if it has)."""
        with self._state.lock:
            if not self._state.ended.is_set():
                self._state.after_end.append(fn)
                return
        _call_quietly(fn)

    def wait(self, timeout_ms: int = 120_000) -> bool:
        """Block until the function has returned (only for tests and scripts: the GUI never waits)."""
        return self._state.ended.wait(timeout_ms / 1000)

    @Slot(object)
    def _relay_progress(self, payload) -> None:
        if not self._discarded:
            self.progress.emit(payload)

    @Slot(object)
    def _on_returned(self, result) -> None:
        # A result that lands after Cancel is dropped: the user asked for nothing.
        if self.cancel_event.is_set():
            self._finish("cancelled", self.cancelled)
        else:
            self._finish("succeeded", self.succeeded, result)

    @Slot(object)
    def _on_errored(self, exc) -> None:
        if self.cancel_event.is_set():
            self._finish("cancelled", self.cancelled)  # e.g. core.training.trainer.TrainingCancelled
            return
        # Logged with its trace; shown by the job's owner (its `failed` slot), or, when nobody
        # listens any more (a discarded job), by the window's notice.
        shown_by_owner = not self._discarded and self.receivers(SIGNAL_FAILED) > 0
        message = report_error(exc, f"Background job '{self.name}'",
                               (lambda _message: None) if shown_by_owner else None)
        self._finish("failed", self.failed, message)

    @Slot()
    def _on_finished(self) -> None:
        self._reporter.deleteLater()  # every report was sent before the function returned
        _live_jobs.discard(self)
        self.ended.emit()

    def _finish(self, outcome: str, signal, *args) -> None:
        self.outcome = outcome
        if not self._discarded:
            signal.emit(*args)
            self.done.emit()


def _call_quietly(fn) -> None:
    try:
        fn()
    except Exception:  # clean-up must never take a worker thread down
        get_logger("desktop.jobs").exception("clean-up after a background job failed")


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
    ("log", message). The cancel event goes straight to core.training.trainer, which
    checks it after every batch and raises TrainingCancelled; train() never
    touches the registry, so a cancelled run leaves no model behind.
    """
    def job(report: Report, cancel: threading.Event):
        from core.training.trainer import train

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


def release_jobs(owner: QObject) -> list[BackgroundJob]:
    """Discard every running job owned by `owner` (a dialog being closed) without waiting:
    each is cancelled, reports nothing more, and is detached from `owner` so it can
    outlive it; it ends at its next cancel point. Returns the released jobs."""
    released = []
    for job in [j for j in _live_jobs if _owned_by(j, owner)]:
        job.discard()
        job.setParent(None)  # kept alive by _live_jobs until its worker finishes
        released.append(job)
    return released


def let_finish(job: BackgroundJob) -> None:
    """A job that must run to its end (a model being written) while its dialog closes: not
    cancelled, not waited for; it reports to nobody and outlives its owner (kept by _live_jobs)."""
    import warnings

    for signal in (job.progress, job.succeeded, job.failed, job.cancelled):
        with warnings.catch_warnings():  # PySide warns when nothing was connected
            warnings.simplefilter("ignore", RuntimeWarning)
            try:
                signal.disconnect()
            except (RuntimeError, TypeError):
                pass
    job.setParent(None)


def wait_for_jobs(owner: QObject, timeout_ms: int = 120_000) -> bool:
    """Release `owner`'s jobs and block until they end (scripts and tests only)."""
    import time

    deadline = time.monotonic() + timeout_ms / 1000
    finished = True
    for job in release_jobs(owner):
        left_ms = max(0, int((deadline - time.monotonic()) * 1000))
        finished = job.wait(left_ms) and finished
    return finished
