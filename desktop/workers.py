"""Background work for the desktop app, all through superqt workers.

- `start_worker(worker)`: a superqt `create_worker(...)` worker on the app's
  long-job pool (studies, training), so a minutes-long job never starves the
  short jobs (viewer images, exports) on Qt's global pool.
- `run_in_pool(fn, on_done, on_error)`: a one-off function on the global pool,
  callbacks on the GUI thread.
- `StoreWorker`: runs `fn(store)` jobs one after another on one thread, in
  submit order (an undo queued after a decision runs after it); a key press
  never waits on disk.

The GUI thread never waits on a worker: a job that is no longer wanted is
cancelled (its generator returns at the next yield) and its late signals are
ignored by whoever started it.
"""
from __future__ import annotations

import traceback

import numpy as np
from PySide6.QtCore import QObject, QThreadPool
from PySide6.QtGui import QImage

# superqt is imported on first use, not at start-up (it loads all its widgets: ~0.3 s).
THUMBNAIL_SIZE = 56  # core.screening.study.THUMBNAIL_SIDE
_long_pool: QThreadPool | None = None


def grey_to_qimage(pixels: np.ndarray) -> QImage:
    """2-D uint8 (or float in [0, 1]) -> a QImage that owns its memory (thread-safe)."""
    if pixels.dtype != np.uint8:
        pixels = np.round(np.clip(pixels, 0.0, 1.0) * 255.0).astype(np.uint8)
    pixels = np.ascontiguousarray(pixels)
    rows, cols = pixels.shape
    return QImage(pixels.data, cols, rows, cols, QImage.Format.Format_Grayscale8).copy()


def readable(exc: BaseException) -> str:
    """A message for a person: core errors carry one; others get their type too."""
    message = getattr(exc, "message", None) or str(exc)
    known = type(exc).__module__.startswith("core.")
    return message if (known and message) else f"{type(exc).__name__}: {message or 'no details'}"


def long_pool() -> QThreadPool:
    """Threads for jobs that may run for minutes (a study, a training run)."""
    global _long_pool
    if _long_pool is None:
        _long_pool = QThreadPool()
        _long_pool.setObjectName("pneumoscan-long-jobs")
        _long_pool.setMaxThreadCount(8)
    return _long_pool


def start_worker(worker, pool: QThreadPool | None = None):
    """Start a superqt worker on `pool` (default: the long-job pool); kept alive until it ends."""
    from superqt.utils import WorkerBase

    WorkerBase._worker_set.add(worker)
    worker._finished.connect(WorkerBase._set_discard)
    (pool or long_pool()).start(worker)
    return worker


def running_workers() -> int:
    from superqt.utils import WorkerBase

    return len(WorkerBase._worker_set)


def create_worker(fn, *args):
    """A superqt worker for `fn(*args)` (a generator function gives a GeneratorWorker), not started."""
    from superqt.utils import create_worker as superqt_create_worker

    return superqt_create_worker(fn, *args, _start_thread=False, _ignore_errors=True)


def run_in_pool(fn, on_done=None, on_error=None):
    """Run `fn()` on the global thread pool; callbacks run on the GUI thread."""
    worker = create_worker(fn)
    if on_done is not None:
        worker.returned.connect(on_done)
    worker.errored.connect(lambda exc: _report(exc, on_error))
    return start_worker(worker, QThreadPool.globalInstance())


def _report(exc: BaseException, on_error) -> None:
    if not hasattr(exc, "message"):  # ImageLoadError / ModelError are expected
        traceback.print_exception(exc)
    if on_error is not None:
        on_error(readable(exc))


class StoreWorker(QObject):
    """`submit(fn, on_done, on_error)`: `fn(store)` on one thread, in submit order."""

    def __init__(self, db_path=None, parent=None):
        super().__init__(parent)
        self._db_path = db_path
        self._store = None
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)  # one thread: jobs run in submit order
        self._pool.setExpiryTimeout(-1)
        self._closed = False

    def _get_store(self):
        if self._store is None:
            from core.reading.store import ResultStore
            self._store = ResultStore(self._db_path)
        return self._store

    def submit(self, fn, on_done=None, on_error=None) -> None:
        if self._closed:
            return
        worker = create_worker(lambda: fn(self._get_store()))
        if on_done is not None:
            worker.returned.connect(on_done)
        worker.errored.connect(lambda exc: _report(exc, on_error))
        start_worker(worker, self._pool)

    def session_submit(self, job, on_done=None) -> None:
        """The `submit` a core.reading.session.ReadingSession expects."""
        self.submit(job, on_done)

    def close(self, timeout_ms: int = 5_000) -> None:
        """Let queued writes finish (decisions are never dropped; each is a few ms), then close."""
        if self._closed:
            return
        self._closed = True
        self._pool.waitForDone(timeout_ms)
        if self._store is not None:
            self._store.close()
            self._store = None
