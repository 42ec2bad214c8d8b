"""Opening a study, as one generator for a worker thread (each yield: progress + cancel point).

Scans the folder, reads the reader's decisions and the sign-off, then screens through
core.reading.study_screening.screen_study (stored results first, all at once; the model comes from
the shared model cache, core.models.cache, and only if something is left to screen).
Yields `(event, payload)` pairs; returns the run summary. Qt-free: the desktop runs it
on a superqt worker (desktop.screening_controller) and turns thumbnails into images with the
`thumbnail_image` hook.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass

SCANNED = "scanned"  # core.reading.study_files.StudyFiles
DECISIONS = "decisions"  # ({path: Decision}, SignOff | None, {path: screen-anyway Decision})
PLAN = "plan"  # core.reading.study_screening.StudyPlan
STORED = "stored"  # [ScreenResult] reused from the store, all at once
STARTED = "started"  # (files to screen, device) once the model is ready
RESULT = "result"  # (ScreenResult, thumbnail image | None) screened now
THUMBNAILS = "thumbnails"  # [(path key, thumbnail image)] of stored results

THUMBNAIL_SIDE = 56
_THUMBNAIL_BATCH = 32


@dataclass
class StudyRequest:
    folder: str
    model_entry: object  # core.models.registry.ModelEntry
    threshold: float
    gradcam: bool = True
    db_path: str | None = None  # None: the user's results store
    use_stored: bool = True  # False: screen every file again


def _same(image):
    return image


def study_job(request: StudyRequest, cancel: threading.Event, thumbnail_image=_same):
    """The generator; `thumbnail_image(uint8 array)` makes what THUMBNAILS and RESULT carry."""
    from core.models.cache import cached_model
    from core.reading.store import ResultStore
    from core.reading.study_files import scan_study
    from core.reading.study_screening import STORED as STORED_ITEM, THUMBNAIL, plan_study, screen_study

    # earlier_preparation: stored results made from a film prepared otherwise than now
    # (ScreenResult.earlier_preparation): kept as they are; "Screen again" updates them.
    summary = {"screened": 0, "errors": 0, "from_store": 0, "earlier_preparation": 0, "cancelled": False,
               "device": "", "total": 0}
    study = scan_study(request.folder)
    summary["total"] = len(study.files)
    yield SCANNED, study
    entry = request.model_entry
    with ResultStore(request.db_path) as store:
        yield DECISIONS, (store.image_decisions(study.files), store.study_sign_off(study.folder),
                          store.image_overrides(study.files))
        plan = plan_study(study.files, store, entry.card.sha256, gradcam=request.gradcam,
                          rescreen=not request.use_stored)
        plan.folder = study.folder
        yield PLAN, plan
        ready = []
        items = screen_study(study.files, lambda: cached_model(entry), store, gradcam=request.gradcam,
                             cancel=cancel, threshold=request.threshold, study_folder=study.folder,
                             stored_first=True, thumbnail_side=THUMBNAIL_SIDE, model_hash=entry.card.sha256,
                             plan=plan, on_screener=lambda screener: ready.append(screener.device))
        stored, thumbnails = [], []
        try:
            if not plan.reuse:
                yield STORED, []
            for item in items:
                if item.kind == STORED_ITEM:
                    stored.append(item.result)
                    summary["from_store"] += 1
                    summary["earlier_preparation"] += item.result.earlier_preparation
                    summary["errors"] += item.result.error is not None
                    if len(stored) == len(plan.reuse):  # all of them, before the model loads
                        yield STORED, stored
                    continue
                if item.kind == THUMBNAIL:
                    thumbnails.append((item.result.path, thumbnail_image(item.thumbnail)))
                    if len(thumbnails) >= _THUMBNAIL_BATCH:
                        yield THUMBNAILS, thumbnails
                        thumbnails = []
                    continue
                if ready and not summary["device"]:
                    summary["device"] = ready[0]
                    yield STARTED, (len(plan.todo), ready[0])
                summary["screened"] += 1
                summary["errors"] += item.result.error is not None
                thumb = thumbnail_image(item.thumbnail) if item.thumbnail is not None else None
                yield RESULT, (item.result, thumb)
            if thumbnails:
                yield THUMBNAILS, thumbnails
        finally:
            items.close()
    summary["cancelled"] = cancel.is_set()
    return summary
