"""Screen a study with the results store's reuse rules: the one function every caller uses.

`pneumoscan-cli screen`, the desktop window, the training wizard and
bench/screening.py all call `screen_study`, so they agree on what is reused:

- a stored result is reused while its file is unchanged and the model is the same;
- a stored *failed* file is tried again (`retry_failed`; the loader may have improved);
- a stored result without a heatmap is screened again when heatmaps are asked for;
- `rescreen=True` reuses nothing.

Every file is decoded once: the decode that feeds the model input also gives the
thumbnail. Screening
itself is `core.screening.screener.Screener` (scope check, calibration and all).
Fresh results are committed to the store before they are yielded.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from core.screening.results import ScreenResult

THUMBNAIL_SIDE = 56
STORED, SCREENED, THUMBNAIL = "stored", "screened", "thumbnail"


@dataclass
class StudyPlan:
    folder: Path | None
    files: list[str]  # resolved paths, in the caller's (or discovery) order
    reuse: dict[str, ScreenResult] = field(default_factory=dict)
    todo: list[str] = field(default_factory=list)  # to screen now
    retried: int = 0  # stored failures tried again
    missing_heatmaps: int = 0  # stored results screened again for their heatmap

    @property
    def total(self) -> int:
        return len(self.files)


@dataclass
class StudyItem:
    """One step of a study run: a result (stored or fresh), or a late thumbnail of a stored one."""
    kind: str  # STORED, SCREENED or THUMBNAIL
    result: ScreenResult
    thumbnail: np.ndarray | None = None  # uint8 (rows, cols), longest side <= thumbnail side
    done: int = 0  # results delivered so far (thumbnail items do not count)
    total: int = 0  # files in the study


def study_files(paths_or_folder) -> tuple[Path | None, list[str]]:
    """(folder or None, resolved files): a folder is searched recursively; a list is taken as given."""
    from core.imaging.discovery import discover

    if isinstance(paths_or_folder, (str, Path)):
        folder = Path(paths_or_folder).expanduser().resolve()
        if not folder.is_dir():
            raise FileNotFoundError(f"study folder not found: {folder}")
        return folder, [str(p.resolve()) for p in discover(folder)]
    return None, [str(Path(p).expanduser().resolve()) for p in paths_or_folder]


def plan_study(paths_or_folder, store, model_hash: str, *, gradcam: bool, retry_failed: bool = True,
               rescreen: bool = False) -> StudyPlan:
    """Which files the store already answers and which must be screened (file work: off the GUI thread)."""
    folder, files = study_files(paths_or_folder)
    plan = StudyPlan(folder=folder, files=files)
    for path in files:
        stored = None if rescreen else store.get_result(path, model_hash)
        if stored is None:
            plan.todo.append(path)
        elif not stored.ok and retry_failed:
            plan.retried += 1
            plan.todo.append(path)
        elif stored.ok and gradcam and stored.cam is None:
            plan.missing_heatmaps += 1
            plan.todo.append(path)
        else:
            plan.reuse[path] = stored
    return plan


def thumbnail_of(pixels: np.ndarray, side: int = THUMBNAIL_SIDE) -> np.ndarray:
    """uint8 preview with the longest side `side` (from pixels already decoded)."""
    import cv2

    rows, cols = pixels.shape[:2]
    scale = min(1.0, side / max(rows, cols))
    small = pixels if scale >= 1.0 else cv2.resize(
        pixels.astype(np.float32, copy=False), (max(1, round(cols * scale)), max(1, round(rows * scale))),
        interpolation=cv2.INTER_AREA)
    return np.round(np.clip(small, 0.0, 1.0) * 255.0).astype(np.uint8)


def load_thumbnail(path, side: int = THUMBNAIL_SIDE) -> np.ndarray | None:
    """A thumbnail decoded at thumbnail size (stored results: the file's only decode this run)."""
    from core.imaging.loader import ImageLoadError, load_image

    try:
        return thumbnail_of(load_image(path, max_side=side).pixels, side)
    except ImageLoadError:
        return None


class _DecodeOnce:
    """A Screener `decode` that keeps the thumbnail of the decode it makes (one decode per file)."""

    def __init__(self, thumbnail_side: int | None):
        self.thumbnail_side = thumbnail_side
        self._lock = threading.Lock()
        self._kept: dict[str, np.ndarray] = {}

    def __call__(self, path, size: int):
        from core.imaging.preprocessing import load_for_model

        x, loaded = load_for_model(path, size)  # exactly what training used
        if self.thumbnail_side:
            thumb = thumbnail_of(loaded.pixels, self.thumbnail_side)
            with self._lock:
                self._kept[str(path)] = thumb
        return x, loaded

    def take(self, path: str) -> np.ndarray | None:
        with self._lock:
            return self._kept.pop(str(path), None)


def _keep(store, folder, result: ScreenResult, warned: list) -> None:
    """Commit one result. A store still busy after its retries costs the reuse on a
    rerun (said once, on stderr), never the run or the result itself."""
    import sys

    from core.reading.store import StoreError

    try:
        store.put_result(folder, result)
    except StoreError as exc:
        if not warned:
            warned.append(exc)
            print(f"warning: results are not being kept for reuse: {exc}", file=sys.stderr)


def screen_study(paths_or_folder, loaded_model, store, *, gradcam: bool, retry_failed: bool = True,
                 cancel: threading.Event | None = None, threshold: float | None = None,
                 rescreen: bool = False, study_folder=None, batch_size: int = 16,
                 stored_first: bool = False, thumbnail_side: int | None = None,
                 model_hash: str | None = None, plan: StudyPlan | None = None, screener=None,
                 on_screener: Callable | None = None) -> Iterator[StudyItem]:
    """Yield one StudyItem per file (each yield is a progress report and a cancel point).

    `loaded_model`: a core.models.registry.LoadedModel, or a zero-argument callable that
    loads one (then pass `model_hash`): the model is only loaded when something
    must be screened. `threshold` re-labels stored results (default: the model's).
    In file order by default; `stored_first` gives every stored result at once,
    then the fresh ones, then (with `thumbnail_side`) the stored ones' thumbnails.
    `on_screener(screener)` is called once the model is ready (e.g. to show the device).
    A ready `screener` (core.screening.screener.Screener) may be passed instead of building one.
    """
    lazy = callable(loaded_model) and not hasattr(loaded_model, "keras_model")
    if model_hash is None:
        if lazy:
            raise ValueError("model_hash is needed when the model is loaded lazily")
        model_hash = loaded_model.sha256
    if plan is None:
        plan = plan_study(paths_or_folder, store, model_hash, gradcam=gradcam,
                          retry_failed=retry_failed, rescreen=rescreen)
    folder = Path(study_folder).resolve() if study_folder is not None else plan.folder
    total, done = plan.total, 0
    cancelled = (lambda: cancel is not None and cancel.is_set())

    decode = _DecodeOnce(thumbnail_side)
    fresh: Iterator[ScreenResult] | None = None
    warned: list = []
    if screener is not None:
        screener.decode = decode
        threshold = screener.threshold
    elif threshold is None and not lazy:
        threshold = loaded_model.threshold

    def start_fresh() -> Iterator[ScreenResult]:
        # The model is loaded (and traced) only here: stored results never wait for it.
        nonlocal screener, threshold
        if not plan.todo or cancelled():
            return iter(())
        if screener is None:
            from core.screening.screener import Screener

            model = loaded_model() if lazy else loaded_model
            screener = Screener(model, threshold=threshold, batch_size=batch_size, gradcam=gradcam,
                                decode=decode)
            threshold = screener.threshold
        if on_screener is not None:
            on_screener(screener)
        return screener.screen(plan.todo, cancel=cancel)

    def stored(path: str) -> ScreenResult:
        result = plan.reuse[path]
        if threshold is not None:
            result.threshold = threshold  # re-labelling never re-runs the model
        return result

    def screened() -> StudyItem | None:
        nonlocal done, fresh
        if fresh is None:
            fresh = start_fresh()
        result = next(fresh, None)
        if result is None:
            return None
        # Committed before it is reported; a list of files without a folder is filed by its own folder.
        _keep(store, folder if folder is not None else Path(result.path).parent, result, warned)
        thumb = decode.take(result.path)
        done += 1
        return StudyItem(SCREENED, result, thumbnail=thumb, done=done, total=total)

    try:
        if stored_first:
            for path in plan.reuse:
                if cancelled():
                    return
                done += 1
                yield StudyItem(STORED, stored(path), done=done, total=total)
            while not cancelled() and (item := screened()) is not None:
                yield item
            if thumbnail_side:
                for path in plan.reuse:
                    if cancelled():
                        return
                    thumb = load_thumbnail(path, thumbnail_side)
                    if thumb is not None:
                        yield StudyItem(THUMBNAIL, plan.reuse[path], thumbnail=thumb, done=done, total=total)
            return
        for path in plan.files:
            if cancelled():
                return
            if path in plan.reuse:
                done += 1
                thumb = load_thumbnail(path, thumbnail_side) if thumbnail_side else None
                yield StudyItem(STORED, stored(path), thumbnail=thumb, done=done, total=total)
                continue
            item = screened()
            if item is None:  # cancelled inside the screener
                return
            yield item
    finally:
        close = getattr(fresh, "close", None)
        if close is not None:
            close()  # stops the decode pool at once
