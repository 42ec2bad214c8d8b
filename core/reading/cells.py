"""The confusion-matrix cells of one image at a threshold, and the uncertain band.

Pure functions: the session (core.reading.session) and the report build on them.
"""
from __future__ import annotations

from core.screening.results import POSITIVE, classify

TRUE_POSITIVE = "TP"
FALSE_NEGATIVE = "FN"
FALSE_POSITIVE = "FP"
TRUE_NEGATIVE = "TN"
CELL_NAMES = {
    FALSE_NEGATIVE: "False negatives",
    FALSE_POSITIVE: "False positives",
    TRUE_POSITIVE: "True positives",
    TRUE_NEGATIVE: "True negatives",
}

NEEDS_REVIEW = "needs_review"
# |p - threshold| below this is "uncertain" and goes to the reader.
UNCERTAIN_BAND = 0.15


def outcome(probability: float | None, truth: str | None, threshold: float) -> str | None:
    """Confusion-matrix cell of one image at a threshold (None if unknown)."""
    call = classify(probability, threshold)
    if call is None or truth is None:
        return None
    if truth == POSITIVE:
        return TRUE_POSITIVE if call == POSITIVE else FALSE_NEGATIVE
    return FALSE_POSITIVE if call == POSITIVE else TRUE_NEGATIVE


def is_uncertain(probability: float | None, threshold: float, band: float = UNCERTAIN_BAND) -> bool:
    return probability is not None and abs(probability - threshold) < band
