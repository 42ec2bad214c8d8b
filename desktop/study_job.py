"""The study job (core.reading.study_job) for the window: thumbnails become QImages on the
worker thread, so the GUI thread only places them."""
from __future__ import annotations

import threading

from core.reading.study_job import (DECISIONS, PLAN, RESULT, SCANNED, STARTED, STORED,  # noqa: F401
                                    THUMBNAILS, StudyRequest)
from core.reading.study_job import study_job as _study_job
from desktop.workers import grey_to_qimage


def study_job(request: StudyRequest, cancel: threading.Event):
    """A generator function (superqt runs it as a GeneratorWorker)."""
    return (yield from _study_job(request, cancel, thumbnail_image=grey_to_qimage))
