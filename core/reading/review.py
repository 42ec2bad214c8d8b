"""Review-queue logic: which images a reader should look at, in which order.

Pure Python (no Qt): the window feeds it plain `ReviewItem`s and asks for
confusion-matrix counts, filter predicates and an ordered, navigable queue.
Every call takes the current threshold, so moving the threshold re-labels
everything without touching the model.
"""
from __future__ import annotations

from dataclasses import dataclass

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

# Table filters.
FILTER_ALL = "all"
FILTER_AI_POSITIVE = "ai_positive"
FILTER_NEEDS_REVIEW = "needs_review"
FILTER_DISAGREEMENTS = "disagreements"
FILTER_ERRORS = "errors"
FILTERS = {
    FILTER_ALL: "All",
    FILTER_AI_POSITIVE: "AI positive",
    FILTER_NEEDS_REVIEW: "Needs review",
    FILTER_DISAGREEMENTS: "Disagreements",
    FILTER_ERRORS: "Errors",
}


@dataclass(frozen=True)
class ReviewItem:
    key: str
    probability: float | None  # None: not screened yet or failed
    truth: str | None = None  # NORMAL | PNEUMONIA | None
    reader_label: str | None = None  # label implied by the reader's latest decision
    error: bool = False


def outcome(probability: float | None, truth: str | None, threshold: float) -> str | None:
    """Confusion-matrix cell of one image at a threshold (None if unknown)."""
    call = classify(probability, threshold)
    if call is None or truth is None:
        return None
    if truth == POSITIVE:
        return TRUE_POSITIVE if call == POSITIVE else FALSE_NEGATIVE
    return FALSE_POSITIVE if call == POSITIVE else TRUE_NEGATIVE


def confusion_counts(items, threshold: float) -> dict[str, int]:
    counts = dict.fromkeys(CELL_NAMES, 0)
    for item in items:
        cell = outcome(item.probability, item.truth, threshold)
        if cell is not None:
            counts[cell] += 1
    return counts


def is_uncertain(probability: float | None, threshold: float, band: float = UNCERTAIN_BAND) -> bool:
    return probability is not None and abs(probability - threshold) < band


def needs_review(item: ReviewItem, threshold: float, band: float = UNCERTAIN_BAND) -> bool:
    """Mistakes when the truth is known; AI positives and uncertain calls otherwise."""
    if item.probability is None:
        return False
    if item.truth is not None:
        return outcome(item.probability, item.truth, threshold) in (FALSE_NEGATIVE, FALSE_POSITIVE)
    return classify(item.probability, threshold) == POSITIVE or is_uncertain(item.probability, threshold, band)


def is_disagreement(item: ReviewItem, threshold: float) -> bool:
    """The reader's label contradicts the AI call at the current threshold."""
    call = classify(item.probability, threshold)
    return item.reader_label is not None and call is not None and item.reader_label != call


def matches_filter(item: ReviewItem, name: str, threshold: float, band: float = UNCERTAIN_BAND) -> bool:
    if name == FILTER_AI_POSITIVE:
        return classify(item.probability, threshold) == POSITIVE
    if name == FILTER_NEEDS_REVIEW:
        return needs_review(item, threshold, band)
    if name == FILTER_DISAGREEMENTS:
        return is_disagreement(item, threshold)
    if name == FILTER_ERRORS:
        return item.error
    return True


def _cell_order(cell: str, threshold: float):
    # Mistakes: the most confident first (the most instructive, and the most
    # likely label errors). Correct calls: the closest to the threshold first.
    if cell == FALSE_NEGATIVE:
        return lambda item: item.probability
    if cell == FALSE_POSITIVE:
        return lambda item: -item.probability
    return lambda item: abs(item.probability - threshold)


def cell_keys(items, cell: str, threshold: float) -> list[str]:
    members = [i for i in items if outcome(i.probability, i.truth, threshold) == cell]
    return [i.key for i in sorted(members, key=_cell_order(cell, threshold))]


def needs_review_keys(items, threshold: float, band: float = UNCERTAIN_BAND) -> list[str]:
    """False negatives, then false positives, then (truth unknown) the most uncertain first."""
    items = list(items)
    keys = cell_keys(items, FALSE_NEGATIVE, threshold) + cell_keys(items, FALSE_POSITIVE, threshold)
    unknown = [i for i in items if i.truth is None and needs_review(i, threshold, band)]
    keys += [i.key for i in sorted(unknown, key=lambda i: abs(i.probability - threshold))]
    return keys


class ReviewQueue:
    """An ordered list of images with a cursor; the reader walks it with keys."""

    def __init__(self, kind: str, keys: list[str], title: str | None = None):
        self.kind = kind  # a cell name (TP/FN/FP/TN) or NEEDS_REVIEW
        self.title = title or CELL_NAMES.get(kind, "Needs review")
        self.keys = list(keys)
        self.index = 0 if self.keys else -1

    @classmethod
    def build(cls, kind: str, items, threshold: float, band: float = UNCERTAIN_BAND) -> "ReviewQueue":
        items = list(items)
        if kind == NEEDS_REVIEW:
            return cls(kind, needs_review_keys(items, threshold, band))
        return cls(kind, cell_keys(items, kind, threshold))

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def current(self) -> str | None:
        return self.keys[self.index] if self.index >= 0 else None

    @property
    def at_end(self) -> bool:
        return self.index == len(self.keys) - 1

    def next(self) -> str | None:
        if self.keys and self.index < len(self.keys) - 1:
            self.index += 1
        return self.current

    def previous(self) -> str | None:
        if self.keys and self.index > 0:
            self.index -= 1
        return self.current

    def go_to(self, key: str) -> bool:
        if key in self.keys:
            self.index = self.keys.index(key)
            return True
        return False

    def start_at_first_undecided(self, decided) -> str | None:
        """Resume where the reader left off: the first image without a decision."""
        for i, key in enumerate(self.keys):
            if key not in decided:
                self.index = i
                break
        return self.current

    def position_text(self) -> str:
        if not self.keys:
            return f"{self.title}: empty"
        return f"{self.title}: {self.index + 1} of {len(self.keys)}"


class DecisionUndoStack:
    """Decisions made in this session, newest last, so Ctrl+Z can take them back."""

    def __init__(self):
        self._entries: list[tuple[str, object]] = []

    def push(self, key: str, ticket) -> None:
        self._entries.append((key, ticket))

    def pop(self):
        return self._entries.pop() if self._entries else None

    def __len__(self) -> int:
        return len(self._entries)

