"""The results store's jobs for the GUI: one thread, in submit order, writes never dropped.

`submit(fn, on_done, on_error, write=False)` runs `fn(store)` on the store's own thread.
Jobs run one at a time in submit order (an undo queued after a decision runs after it).
A write that fails (disk full, database locked past the store's busy retry) stays at the
head of the queue and is retried with a growing pause (RETRY_DELAYS_MS); the jobs behind
it wait, so order still holds. Meanwhile `unsaved_changed(n)` tells the window how many
writes are not stored yet, and the first failure of a burst is reported (log + notice).
`flush(timeout_ms)` lets queued writes finish while the event loop runs (closing);
`drop_pending()` is the reader's explicit choice to give up on them.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from PySide6.QtCore import QElapsedTimer, QEventLoop, QObject, QThreadPool, QTimer, Signal

from core.logs import get_logger
from desktop.workers import create_worker, launch, readable, report_error

RETRY_DELAYS_MS = (500, 1_000, 2_000, 5_000, 10_000, 30_000)  # then every 30 s
log = get_logger("desktop.store")


@dataclass
class _Job:
    fn: object
    on_done: object = None
    on_error: object = None
    write: bool = False
    attempts: int = 0


class StoreWorker(QObject):
    unsaved_changed = Signal(int)  # writes queued or failing and not stored yet
    write_failed = Signal(str)  # a write failed (it will be retried)
    drained = Signal()  # nothing left to run

    def __init__(self, db_path=None, parent=None):
        super().__init__(parent)
        self._db_path = db_path
        self._store = None
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)  # one thread: the store's connection stays on it
        self._pool.setExpiryTimeout(-1)
        self._queue: deque[_Job] = deque()
        self._running: _Job | None = None
        self._retry = QTimer(self, singleShot=True)
        self._retry.timeout.connect(self._next)
        self._closed = False
        self._failing = False

    # -- queue -------------------------------------------------------------------

    def _get_store(self):
        if self._store is None:
            from core.reading.store import ResultStore
            self._store = ResultStore(self._db_path)
        return self._store

    def submit(self, fn, on_done=None, on_error=None, write: bool = False) -> None:
        if self._closed:
            log.error("store job submitted after closing: %s", getattr(fn, "__name__", fn))
            return
        self._queue.append(_Job(fn, on_done, on_error, write))
        if write:
            self.unsaved_changed.emit(self.unsaved)
        self._next()

    def session_submit(self, job, on_done=None) -> None:
        """The `submit` a core.reading.session.ReadingSession expects: its jobs are writes."""
        self.submit(job, on_done, write=True)

    @property
    def unsaved(self) -> int:
        """Writes not stored yet (queued, running or waiting for a retry)."""
        return sum(job.write for job in self._queue) + bool(self._running and self._running.write)

    @property
    def pending(self) -> int:
        return len(self._queue) + (self._running is not None)

    @property
    def failing(self) -> bool:
        """The last write failed and waits for its retry."""
        return self._failing

    def _next(self) -> None:
        if self._running is not None or self._retry.isActive() or not self._queue:
            if not self._queue and self._running is None:
                self.drained.emit()
            return
        job = self._running = self._queue.popleft()
        worker = create_worker(lambda: job.fn(self._get_store()))
        worker.returned.connect(lambda value: self._done(job, value))
        worker.errored.connect(lambda exc: self._failed(job, exc))
        launch(worker, self._pool)

    def _done(self, job: _Job, value) -> None:
        self._running = None
        if job.write:
            if self._failing:
                log.info("store writes succeed again after %d attempts", job.attempts + 1)
            self._failing = False
            self.unsaved_changed.emit(self.unsaved)
        if job.on_done is not None:
            job.on_done(value)
        self._next()

    def _failed(self, job: _Job, exc: BaseException) -> None:
        self._running = None
        if not job.write:  # a read: reported, not retried
            report_error(exc, "Reading the results store", job.on_error)
            self._next()
            return
        delay = RETRY_DELAYS_MS[min(job.attempts, len(RETRY_DELAYS_MS) - 1)]
        job.attempts += 1
        self._queue.appendleft(job)  # stays first: later jobs (an undo) must not overtake it
        first = not self._failing
        self._failing = True
        if first:
            message = report_error(exc, "Saving a decision (it is kept and retried)", job.on_error)
        else:
            message = readable(exc)
            log.warning("store write failed again (attempt %d): %s", job.attempts, message)
        self.write_failed.emit(message)
        self.unsaved_changed.emit(self.unsaved)
        if not self._closed or self._flushing:
            self._retry.start(delay)

    def retry_now(self) -> None:
        """Run a failed write's retry now rather than after its pause (the reader is waiting)."""
        if self._retry.isActive():
            self._retry.stop()
        self._next()

    # -- closing -------------------------------------------------------------------

    _flushing = False

    def flush(self, timeout_ms: int = 30_000) -> bool:
        """Run the queue to its end while processing events (the window is closing); True when
        every job ran. Failed writes are retried at once rather than after their pause."""
        clock = QElapsedTimer()
        clock.start()
        self._flushing = True
        try:
            while self.pending and clock.elapsed() < timeout_ms:
                if self._retry.isActive():
                    self._retry.stop()
                    self._next()
                QEventLoop().processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
                if self.pending and self._running is None and not self._retry.isActive():
                    self._next()
                self._pool.waitForDone(20)
        finally:
            self._flushing = False
        return not self.pending

    def drop_pending(self) -> int:
        """The reader chose to quit without the unsaved writes: they are logged, then dropped."""
        dropped = [job for job in self._queue if job.write]
        for job in dropped:
            log.error("decision not saved (the reader quit while the store was failing): %r", job.fn)
        self._queue.clear()
        self._retry.stop()
        self.unsaved_changed.emit(self.unsaved)
        return len(dropped)

    def close(self, timeout_ms: int = 30_000) -> bool:
        """Let queued jobs finish (events are processed meanwhile), then close the store.
        Returns False when writes were left unsaved (they are in the log)."""
        if self._closed:
            return True
        finished = self.flush(timeout_ms)
        self._closed = True
        if not finished:
            self.drop_pending()
        self._retry.stop()
        self._pool.waitForDone(timeout_ms)
        if self._store is not None:
            self._store.close()
            self._store = None
        return finished
