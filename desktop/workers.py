"""Everything that touches files, the model or the store runs here, off the GUI thread.

- `ScreeningJob`: scans a study, shows stored results, loads the model (the
  first TensorFlow import happens here), screens what is left and stores it.
- `StoreThread`: one thread that serialises reader-decision writes and
  history reads, so a key press never waits on disk.
- `run_in_pool`: a one-off job on the global QThreadPool (viewer image
  loading, PDF export, listing models) with the result delivered to the GUI.
"""
from __future__ import annotations

import threading
from contextlib import closing
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QRunnable, QThread, QThreadPool, Signal, Slot
from PySide6.QtGui import QImage

THUMBNAIL_SIZE = 56


def grey_to_qimage(pixels: np.ndarray) -> QImage:
    """2-D uint8 (or float in [0, 1]) -> a QImage that owns its memory (thread-safe)."""
    if pixels.dtype != np.uint8:
        pixels = np.round(np.clip(pixels, 0.0, 1.0) * 255.0).astype(np.uint8)
    pixels = np.ascontiguousarray(pixels)
    rows, cols = pixels.shape
    return QImage(pixels.data, cols, rows, cols, QImage.Format.Format_Grayscale8).copy()


def make_thumbnail(path, size: int = THUMBNAIL_SIZE) -> QImage | None:
    """A small grey preview; None for files that do not load (their row shows the error)."""
    from core.loader import ImageLoadError, load_image

    try:
        image = load_image(path, max_side=size)
    except ImageLoadError:
        return None
    return grey_to_qimage(image.pixels)


@dataclass
class ScreeningRequest:
    folder: str
    model_entry: object  # core.registry.ModelEntry
    threshold: float
    gradcam: bool = True
    db_path: str | None = None  # None: the user's results store
    use_stored: bool = True  # False: screen every file again


class ScreeningJob(QObject):
    """Runs one study through one model; lives on its own QThread."""

    study_scanned = Signal(object)  # desktop.study.StudyFiles
    stored_loaded = Signal(list, dict)  # [ScreenResult], {path: Decision}
    screening_started = Signal(int, str)  # files to screen, device
    result_ready = Signal(object, object)  # ScreenResult, QImage | None
    thumbnail_ready = Signal(str, object)  # path key, QImage
    finished = Signal(dict)  # summary: screened, errors, from_store, cancelled, device
    failed = Signal(str)

    def __init__(self, request: ScreeningRequest):
        super().__init__()
        self.request = request
        self.cancel_event = threading.Event()

    def cancel(self) -> None:
        # Called from the GUI thread; Screener.screen checks it between batches.
        self.cancel_event.set()

    @Slot()
    def run(self) -> None:
        summary = {"screened": 0, "errors": 0, "from_store": 0, "cancelled": False, "device": ""}
        store = None
        try:
            from core.store import ResultStore
            from desktop.study import scan_study

            req = self.request
            study = scan_study(req.folder)
            self.study_scanned.emit(study)
            store = ResultStore(req.db_path)
            model_hash = req.model_entry.card.sha256

            stored = []
            if req.use_stored:
                wanted = set(study.files)
                stored = [r for r in store.study_results(study.folder, model_hash)
                          if str(Path(r.path).resolve()) in wanted]
            self.stored_loaded.emit(stored, store.latest_decisions(study.folder))
            summary["from_store"] = len(stored)
            summary["errors"] += sum(1 for r in stored if r.error)

            done = {str(Path(r.path).resolve()) for r in stored}
            todo = [key for key in study.files if key not in done]
            if todo and not self.cancel_event.is_set():
                self._screen(todo, study.folder, store, summary)
            # Thumbnails for stored rows come last: the new results matter more.
            for result in stored:
                if self.cancel_event.is_set():
                    break
                thumb = make_thumbnail(result.path)
                if thumb is not None:
                    self.thumbnail_ready.emit(str(Path(result.path).resolve()), thumb)
            summary["cancelled"] = self.cancel_event.is_set()
            self.finished.emit(summary)
        except Exception as exc:  # reported in the window, never raised into Qt
            traceback.print_exc()
            self.failed.emit(_readable(exc))
        finally:
            if store is not None:
                store.close()
            # Quit from this thread: a queued quit() would wait for a GUI thread
            # that may itself be blocked in ScreeningRun.stop().
            QThread.currentThread().quit()

    def _screen(self, todo, folder, store, summary) -> None:
        from core.registry import load_model
        from core.screening import Screener

        req = self.request
        loaded = load_model(req.model_entry)
        screener = Screener(loaded, threshold=req.threshold, gradcam=req.gradcam)
        summary["device"] = screener.device
        self.screening_started.emit(len(todo), screener.device)
        results = screener.screen(todo, cancel=self.cancel_event)
        with closing(results):  # stops the decode pool at once on cancel
            self._consume(results, folder, store, summary)

    def _consume(self, results, folder, store, summary) -> None:
        for result in results:
            store.put_result(folder, result)
            summary["screened"] += 1
            if result.error:
                summary["errors"] += 1
            thumb = None if result.error else make_thumbnail(result.path)
            self.result_ready.emit(result, thumb)
            if self.cancel_event.is_set():
                break


def _readable(exc: Exception) -> str:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return message


class ScreeningRun(QObject):
    """Owns a ScreeningJob and its thread, and relays the job's signals to the GUI.

    The relay lives on the GUI thread; once `discard()`ed (another study or
    model was opened) results still in flight from the old job are dropped.
    """

    study_scanned = Signal(object)
    stored_loaded = Signal(list, dict)
    screening_started = Signal(int, str)
    result_ready = Signal(object, object)
    thumbnail_ready = Signal(str, object)
    finished = Signal(dict)
    failed = Signal(str)

    def __init__(self, job: ScreeningJob, parent=None):
        super().__init__(parent)
        self.job = job
        self._discarded = False
        self.thread = QThread()
        self.thread.setObjectName("screening")
        job.moveToThread(self.thread)
        self.thread.started.connect(job.run)
        job.study_scanned.connect(self._relay_study_scanned)
        job.stored_loaded.connect(self._relay_stored_loaded)
        job.screening_started.connect(self._relay_screening_started)
        job.result_ready.connect(self._relay_result_ready)
        job.thumbnail_ready.connect(self._relay_thumbnail_ready)
        job.finished.connect(self._relay_finished)
        job.failed.connect(self._relay_failed)

    def start(self) -> None:
        self.thread.start()

    def is_running(self) -> bool:
        return self.thread.isRunning()

    def cancel(self) -> None:
        self.job.cancel()

    def discard(self) -> None:
        self._discarded = True

    def stop(self, timeout_ms: int = 60_000) -> bool:
        """Cancel and wait for the thread (closing the window, switching study)."""
        self.job.cancel()
        return self.thread.wait(timeout_ms)

    # Queued into the GUI thread (this object lives there); dropped once discarded.
    @Slot(object)
    def _relay_study_scanned(self, study) -> None:
        if not self._discarded:
            self.study_scanned.emit(study)

    @Slot(list, dict)
    def _relay_stored_loaded(self, results, decisions) -> None:
        if not self._discarded:
            self.stored_loaded.emit(results, decisions)

    @Slot(int, str)
    def _relay_screening_started(self, total, device) -> None:
        if not self._discarded:
            self.screening_started.emit(total, device)

    @Slot(object, object)
    def _relay_result_ready(self, result, thumbnail) -> None:
        if not self._discarded:
            self.result_ready.emit(result, thumbnail)

    @Slot(str, object)
    def _relay_thumbnail_ready(self, key, thumbnail) -> None:
        if not self._discarded:
            self.thumbnail_ready.emit(key, thumbnail)

    @Slot(dict)
    def _relay_finished(self, summary) -> None:
        if not self._discarded:
            self.finished.emit(summary)

    @Slot(str)
    def _relay_failed(self, message) -> None:
        if not self._discarded:
            self.failed.emit(message)


# -- serial store thread -----------------------------------------------------

class _StoreJob:
    __slots__ = ("fn", "on_done", "on_error")

    def __init__(self, fn, on_done, on_error):
        self.fn, self.on_done, self.on_error = fn, on_done, on_error


class _StoreWorker(QObject):
    done = Signal(object, object)  # job, result
    error = Signal(object, str)

    def __init__(self, db_path):
        super().__init__()
        self._db_path = db_path
        self._store = None

    @Slot(object)
    def run_job(self, job: _StoreJob) -> None:
        try:
            if self._store is None:
                from core.store import ResultStore
                self._store = ResultStore(self._db_path)
            self.done.emit(job, job.fn(self._store))
        except Exception as exc:
            traceback.print_exc()
            self.error.emit(job, _readable(exc))

    @Slot()
    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None
        QThread.currentThread().quit()


class StoreThread(QObject):
    """Runs `fn(store)` jobs one after another on one thread, in submit order.

    Order matters: an undo submitted right after a decision runs after it, so
    the undo can use the decision the previous job created.
    """

    _submit = Signal(object)
    _close = Signal()

    def __init__(self, db_path=None, parent=None):
        super().__init__(parent)
        self._thread = QThread()
        self._thread.setObjectName("results-store")
        self._worker = _StoreWorker(db_path)
        self._worker.moveToThread(self._thread)
        self._submit.connect(self._worker.run_job)
        self._close.connect(self._worker.close)
        self._worker.done.connect(self._on_done)
        self._worker.error.connect(self._on_error)
        self._thread.start()

    def submit(self, fn, on_done=None, on_error=None) -> None:
        self._submit.emit(_StoreJob(fn, on_done, on_error))

    @Slot(object, object)
    def _on_done(self, job, result) -> None:
        if job.on_done is not None:
            job.on_done(result)

    @Slot(object, str)
    def _on_error(self, job, message) -> None:
        if job.on_error is not None:
            job.on_error(message)

    def close(self, timeout_ms: int = 10_000) -> None:
        """Finish the queued jobs (decisions are never dropped), then stop."""
        if self._thread.isRunning():
            self._close.emit()
            self._thread.wait(timeout_ms)


# -- one-off pool jobs -------------------------------------------------------

class _Relay(QObject):
    """Carries a pool job's outcome back to the GUI thread (it lives there)."""

    done = Signal(object)
    error = Signal(str)

    def __init__(self, on_done, on_error):
        super().__init__()
        self._on_done, self._on_error = on_done, on_error
        # Bound slots of a GUI-thread object: the emit from the pool is queued.
        self.done.connect(self._deliver_done)
        self.error.connect(self._deliver_error)

    @Slot(object)
    def _deliver_done(self, value) -> None:
        _live_relays.discard(self)
        if self._on_done is not None:
            self._on_done(value)

    @Slot(str)
    def _deliver_error(self, message: str) -> None:
        _live_relays.discard(self)
        if self._on_error is not None:
            self._on_error(message)


class _PoolTask(QRunnable):
    def __init__(self, fn, relay: _Relay):
        super().__init__()
        self._fn = fn
        self._relay = relay

    def run(self) -> None:
        try:
            result = self._fn()
        except Exception as exc:
            if not hasattr(exc, "message"):  # ImageLoadError / ModelError are expected
                traceback.print_exc()
            self._relay.error.emit(_readable(exc))
        else:
            self._relay.done.emit(result)


_live_relays: set = set()


def run_in_pool(fn, on_done=None, on_error=None) -> None:
    """Run `fn()` on the global thread pool; callbacks run on the GUI thread."""
    relay = _Relay(on_done, on_error)  # created on the GUI thread
    _live_relays.add(relay)  # keeps it alive until delivery
    QThreadPool.globalInstance().start(_PoolTask(fn, relay))
