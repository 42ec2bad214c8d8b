"""When the Grad-CAM overlay starts hidden (issue 19 item 9).

A reader reviewing a queue (false negatives, needs review, ...) must see the evidence
map on every image, on its absolute scale: a false negative at p = 0.426 under a 0.45
threshold is exactly where the map matters. Outside a queue the map starts hidden only
on confident normals (AI normal and outside the uncertain band), where an overlay of
faint noise would only distract; H still shows it.
"""
from __future__ import annotations

from core.reading.cells import UNCERTAIN_BAND, is_uncertain
from core.screening.results import NEGATIVE


def map_hidden_by_default(call: str | None, probability: float | None, threshold: float,
                          reviewing: bool, band: float = UNCERTAIN_BAND) -> bool:
    """True only for a confident normal seen outside a review queue."""
    if reviewing or call != NEGATIVE or probability is None:
        return False
    return not is_uncertain(probability, threshold, band)
