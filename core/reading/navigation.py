"""Which rows the table lists and where the reader is: the filter, the open review queue
and the cursor.

`Navigator` holds that state; what a filter or a queue contains is the session's
judgement (`matches(row, name)`, `queue_keys(kind)`), passed in, so this module knows
no thresholds. Opening a queue makes the table list exactly the queue, so the table
and the viewer always show the same image.
"""
from __future__ import annotations

from core.reading.cells import CELL_NAMES, NEEDS_REVIEW

OUT_OF_SCOPE_QUEUE = "out_of_scope"
QUEUE_TITLES = {**CELL_NAMES, NEEDS_REVIEW: "Needs review", OUT_OF_SCOPE_QUEUE: "Out of scope"}

FILTER_ALL = "all"
FILTER_AI_POSITIVE = "ai_positive"
FILTER_NEEDS_REVIEW = "needs_review"
FILTER_DISAGREEMENTS = "disagreements"
FILTER_CHANGED = "changed"
FILTER_OUT_OF_SCOPE = "out_of_scope"
FILTER_UNSCREENED = "unscreened"
FILTER_ERRORS = "errors"
FILTER_QUEUE = "queue"  # set by opening a queue
FILTERS = {
    FILTER_ALL: "All",
    FILTER_AI_POSITIVE: "AI positive",
    FILTER_NEEDS_REVIEW: "Needs review",
    FILTER_DISAGREEMENTS: "Disagreed",
    FILTER_CHANGED: "Changed calls",
    FILTER_OUT_OF_SCOPE: "Out of scope",
    FILTER_UNSCREENED: "Not screened",
    FILTER_ERRORS: "Errors",
}


class Navigator:
    def __init__(self, ordered_keys, matches):
        self._ordered_keys = ordered_keys  # () -> every key in the current order
        self._matches = matches  # (key, filter name) -> bool
        self.filter = FILTER_ALL
        self.queue_kind: str | None = None
        self.queue: list[str] = []
        self.current: str | None = None
        self._visible: list[str] | None = None

    def reset(self) -> None:
        self.filter, self.queue_kind, self.queue, self.current = FILTER_ALL, None, [], None
        self._visible = None

    def invalidate(self) -> None:
        self._visible = None

    def invalidate_filter(self) -> None:
        """A decision changed: a filter may list other rows; an open queue stays as it is."""
        if self.filter != FILTER_QUEUE:
            self._visible = None

    def visible_keys(self) -> list[str]:
        if self._visible is None:
            if self.filter == FILTER_QUEUE:
                self._visible = list(self.queue)
            else:
                self._visible = [k for k in self._ordered_keys() if self._matches(k, self.filter)]
        return self._visible

    def set_filter(self, name: str) -> bool:
        """Returns True when an open queue was closed by it."""
        if name not in FILTERS and name != FILTER_QUEUE:
            raise ValueError(f"unknown filter {name!r}")
        closed = name != FILTER_QUEUE and self.queue_kind is not None
        if closed:
            self.queue_kind, self.queue = None, []
        self.filter = name
        self._visible = None
        return closed

    def open_queue(self, kind: str, keys: list[str]) -> None:
        self.queue_kind, self.queue = kind, list(keys)
        self.filter = FILTER_QUEUE
        self._visible = None

    def step_target(self, direction: int) -> str | None:
        """The key Next (+1) or Previous (-1) goes to in the listed rows."""
        keys = self.visible_keys()
        if not keys:
            return self.current
        if self.current in keys:
            return keys[min(max(keys.index(self.current) + direction, 0), len(keys) - 1)]
        # The current image left the list (e.g. a decision took it out of a filter):
        # continue from where it stood in the full order.
        position = {k: i for i, k in enumerate(self._ordered_keys())}
        here = position.get(self.current, -1)
        if direction > 0:
            return next((k for k in keys if position[k] > here), keys[-1])
        before = [k for k in keys if position[k] < here]
        return before[-1] if before else keys[0]

    @property
    def at_end(self) -> bool:
        keys = self.visible_keys()
        return bool(keys) and self.current == keys[-1]

    def queue_text(self, undecided) -> str:
        """'False negatives: 3 of 18 (15 to decide)'; `undecided(key)` says which are left."""
        if self.queue_kind is None:
            return "No queue open: pick a matrix cell or Needs review"
        title = QUEUE_TITLES.get(self.queue_kind, self.queue_kind)
        if not self.queue:
            return f"{title}: empty"
        left = sum(1 for k in self.queue if undecided(k))
        position = self.queue.index(self.current) + 1 if self.current in self.queue else 0
        return f"{title}: {position} of {len(self.queue)} ({left} to decide)"
