"""Kept for older imports: the review logic now lives in core.reading.review (Qt-free)."""
from core.reading.review import *  # noqa: F401,F403
from core.reading.review import (CELL_NAMES, FALSE_NEGATIVE, FALSE_POSITIVE, FILTER_ALL, FILTER_DISAGREEMENTS,  # noqa: F401
                         FILTER_ERRORS, FILTER_NEEDS_REVIEW, FILTERS, NEEDS_REVIEW, TRUE_NEGATIVE, TRUE_POSITIVE,
                         DecisionUndoStack, ReviewItem, ReviewQueue, confusion_counts, matches_filter,
                         needs_review_keys)
