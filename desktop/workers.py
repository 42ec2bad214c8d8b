"""Background work for the desktop app: one mechanism, superqt workers.

Every job runs as a superqt worker created by `create_worker` (our subclasses of
superqt's public FunctionWorker / GeneratorWorker, as napari's `_qt/qthreading.py`
does) and started by `start_worker`, which routes the job's error to the log
(core.logs, with its traceback) and to whoever shows it: the caller's `on_error`,
else the window (a notice, through `worker_errors().failed`). Nothing fails on
stderr only.

- `start_worker(worker, pool=None, context=..., on_error=None)`: on the long-job pool
  by default (studies, training), so a minutes-long job never starves the short jobs
  (viewer images, exports) on Qt's global pool.
- `run_in_pool(fn, on_done, on_error, context)`: a one-off function on the global pool.
- `StoreWorker` (desktop.store_worker): the results store's jobs, in order, writes retried.

Why the subclasses: a worker's signals object is a QObject of the GUI thread. Left to
Python it is freed wherever the worker's last reference dies, often the pool thread
just after the job returned, racing the GUI thread that is still delivering its
signals (a segfault in a pool thread, issue 19 item 6). Here the signals object is
parented to a GUI-thread keeper and deleted there (`deleteLater`) once the job has
finished. The GUI thread never waits on a worker: a job nobody wants is cancelled
and its late signals are ignored by whoever started it.
"""
from __future__ import annotations

import functools
import threading
import warnings

import numpy as np
from PySide6.QtCore import QObject, QThreadPool, QTimer, Signal
from PySide6.QtGui import QImage

from core.logs import get_logger

# superqt is imported on first use, not at start-up (it loads all its widgets: ~0.3 s).
THUMBNAIL_SIZE = 56  # = core.reading.study_job.THUMBNAIL_SIDE
_live: set = set()  # started workers whose `finished` has not reached the GUI thread yet
_errors: "WorkerErrors | None" = None
_classes: tuple | None = None
log = get_logger("desktop.workers")


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


class WorkerErrors(QObject):
    """Where a job's error goes when its starter gave no `on_error`: the main window listens."""
    failed = Signal(str, str)  # context ("Loading the image"), readable message


def worker_errors() -> WorkerErrors:
    global _errors
    if _errors is None:
        _errors = WorkerErrors()
    return _errors


def report_error(exc: BaseException, context: str, on_error=None) -> str:
    """Log `exc` (expected core errors in one line, others with their traceback), then show
    it: `on_error(message)` where the caller shows it, else a notice in the window."""
    message = readable(exc)
    if getattr(exc, "message", None) and type(exc).__module__.startswith("core."):
        log.warning("%s: %s", context, message)
    else:
        log.error("%s: %s", context, message, exc_info=(type(exc), exc, exc.__traceback__))
    if on_error is not None:
        on_error(message)
    else:
        worker_errors().failed.emit(context, message)
    return message


@functools.cache
def long_pool() -> QThreadPool:
    """Threads for jobs that may run for minutes (a study, a training run)."""
    pool = QThreadPool()
    pool.setObjectName("pneumoscan-long-jobs")
    pool.setMaxThreadCount(8)
    return pool


@functools.cache
def _signals_keeper() -> QObject:
    """A GUI-thread parent for every worker's signals object (so Python never frees one)."""
    keeper = QObject()
    keeper.setObjectName("pneumoscan-worker-signals")
    return keeper


def gui_owned(obj: QObject) -> QObject:
    """Give a QObject that worker threads emit from to the GUI thread's keeper: Python never
    frees it (possibly on a pool thread); its owner calls deleteLater() when the job has ended."""
    obj.setParent(_signals_keeper())
    return obj


def _worker_classes() -> tuple:
    global _classes
    if _classes is None:
        from superqt.utils import FunctionWorker, GeneratorWorker

        class _GuiOwnedSignals:
            """The signals object belongs to the GUI thread and is deleted there, only after
            `run()` has returned (superqt still emits from it after `finished`).

            superqt's `run()` points the process-wide `warnings.showwarning` at a lambda that
            emits this worker's `warned`; with two workers overlapping, `catch_warnings` can
            restore a finished worker's lambda for good. Such a stale lambda must neither
            raise in whatever code warns next (a training run) nor lose the warning: after
            `run()`, `warned` resolves to the log."""

            def _own_signals(self) -> None:
                self.ran = threading.Event()
                gui_owned(self.signals)
                self.signals.warned.connect(_log_warning)

            def run(self) -> None:
                try:
                    super().run()
                finally:
                    self.ran.set()

            def __getattr__(self, name):
                ran = self.__dict__.get("ran")
                if name == "warned" and ran is not None and ran.is_set():
                    return _WARNINGS_TO_LOG
                return super().__getattr__(name)

        class Worker(_GuiOwnedSignals, FunctionWorker):
            """A function on a pool thread."""

            def __init__(self, fn, *args):
                FunctionWorker.__init__(self, fn, *args)
                self._own_signals()

        class GeneratorJob(_GuiOwnedSignals, GeneratorWorker):
            """A generator on a pool thread (each yield: a report and a cancel point)."""

            def __init__(self, fn, *args):
                GeneratorWorker.__init__(self, fn, *args)
                self._own_signals()

            def work(self):
                outcome = super().work()
                # superqt returns a RuntimeError raised by the generator (and then only warns):
                # raise it so it is reported like any other error.
                if isinstance(outcome, RuntimeError):
                    raise outcome
                return outcome

        _classes = (Worker, GeneratorJob)
    return _classes


def _log_warning(args) -> None:
    """A warning raised while a job ran (superqt's `warned`: showwarning's arguments)."""
    message, category, filename, lineno = args[:4]
    log.warning("%s", warnings.formatwarning(message, category, filename, lineno).strip())


class _WarningsToLog:
    """Stands in for a finished worker's `warned` signal (see _GuiOwnedSignals)."""

    @staticmethod
    def emit(args) -> None:
        _log_warning(args)


_WARNINGS_TO_LOG = _WarningsToLog()


def create_worker(fn, *args):
    """A worker for `fn(*args)` (a generator function gives a generator worker), not started."""
    import inspect

    worker_class, generator_class = _worker_classes()
    return (generator_class if inspect.isgeneratorfunction(fn) else worker_class)(fn, *args)


def launch(worker, pool: QThreadPool | None = None):
    """Start `worker` on `pool` (default: the long-job pool) and keep it until it has finished.

    The caller has connected `errored` itself (see start_worker for routing)."""
    _live.add(worker)
    signals = worker.signals
    worker.finished.connect(lambda: _release(worker, signals))
    (pool or long_pool()).start(worker)
    return worker


def _release(worker, signals) -> None:
    """On the GUI thread once the job has finished: its signals object is deleted here, not on a
    pool thread, and not before `run()` has returned (it emits once more after `finished`)."""
    if not worker.ran.is_set():
        QTimer.singleShot(5, lambda: _release(worker, signals))
        return
    _live.discard(worker)
    signals.deleteLater()


def start_worker(worker, pool: QThreadPool | None = None, context: str = "A background job", on_error=None):
    """Start `worker`; its error is logged and shown (`on_error(message)`, else a window notice)."""
    worker.errored.connect(lambda exc: report_error(exc, context, on_error))
    return launch(worker, pool)


def running_workers() -> int:
    return len(_live)


def run_in_pool(fn, on_done=None, on_error=None, context: str = "A background job"):
    """Run `fn()` on the global thread pool; callbacks run on the GUI thread."""
    worker = create_worker(fn)
    if on_done is not None:
        worker.returned.connect(on_done)
    return start_worker(worker, QThreadPool.globalInstance(), context, on_error)


def __getattr__(name):  # StoreWorker moved to desktop.store_worker (kept importable from here)
    if name == "StoreWorker":
        from desktop.store_worker import StoreWorker
        return StoreWorker
    raise AttributeError(name)
