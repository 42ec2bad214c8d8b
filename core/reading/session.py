"""The reading session: one study as a reader works through it (no Qt, no TensorFlow).

`ReadingSession` owns everything the main window shows about a study: its rows
(every file, screened or not), THE threshold, the table filter, the review
queue and cursor, the reader's decisions and their undo, and the sign-off. The
window is a view over it: it calls methods and redraws on change events.

Change events are plain callbacks `listener(event, payload)`; the Qt side turns
them into signals. Events: STUDY (new study, payload folder), ROWS (rows added
or re-labelled; payload list of keys or None for all), THRESHOLD, FILTER,
QUEUE, CURSOR (payload key), DECISION (payload key), SIGNOFF.

Store writes go through `submit(job, on_done)`: `job(store)` runs wherever the
caller wants (the GUI: a worker thread) and `on_done(value)` comes back on the
caller's thread. The default runs the job at once (scripts and tests).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from core.screening.results import AGREE, DISAGREE, OUT_OF_SCOPE, POSITIVE, SCREEN_ANYWAY, classify, reader_label
from core.reading.review import (CELL_NAMES, FALSE_NEGATIVE, FALSE_POSITIVE, NEEDS_REVIEW, UNCERTAIN_BAND,
                         is_uncertain, outcome)

# Events.
STUDY, ROWS, THRESHOLD, FILTER, QUEUE, CURSOR, DECISION, SIGNOFF = (
    "study", "rows", "threshold", "filter", "queue", "cursor", "decision", "signoff")

# Queues besides the four confusion-matrix cells (core.reading.review) and NEEDS_REVIEW.
OUT_OF_SCOPE_QUEUE = "out_of_scope"
QUEUE_TITLES = {**CELL_NAMES, NEEDS_REVIEW: "Needs review", OUT_OF_SCOPE_QUEUE: "Out of scope"}

# Table filters. FILTER_QUEUE is set by opening a queue: the table then lists
# exactly the queue, so the table and the viewer always show the same image.
FILTER_ALL = "all"
FILTER_AI_POSITIVE = "ai_positive"
FILTER_NEEDS_REVIEW = "needs_review"
FILTER_DISAGREEMENTS = "disagreements"
FILTER_CHANGED = "changed"
FILTER_OUT_OF_SCOPE = "out_of_scope"
FILTER_UNSCREENED = "unscreened"
FILTER_ERRORS = "errors"
FILTER_QUEUE = "queue"
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

# Orders of the rows (the table's header clicks map onto these).
ORDER_GROUPED = "grouped"  # patient, study, view, then file name (natural)
ORDER_FILE = "file"
ORDER_PROBABILITY = "probability"
_VIEW_RANK = {"PA": 0, "AP": 1, "LL": 2, "RL": 2, "LATERAL": 2, "LAT": 2}

Listener = Callable[[str, object], None]


def natural_key(text: str) -> list:
    """`img2` before `img10`: digit runs compare as numbers, the rest case-blind."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part.casefold())
            for part in re.split(r"(\d+)", str(text)) if part]


def _utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass
class Row:
    """One file of the study; `result` is None until it is screened."""
    key: str  # resolved path
    file: str  # path relative to the study folder (shown; never a full path in reports)
    truth: str | None = None
    result: object = None  # core.screening.results.ScreenResult
    decision: object = None  # core.reading.store.Decision (newest, not undone) or a provisional one
    override: object = None  # the SCREEN_ANYWAY decision (newest, not undone) of an out-of-scope image
    patient: str = ""
    study_uid: str = ""
    view: str = ""

    @property
    def screened(self) -> bool:
        return self.result is not None

    @property
    def error(self) -> str | None:
        return None if self.result is None else self.result.error

    @property
    def probability(self) -> float | None:
        if self.result is None or self.result.error:
            return None
        return self.result.probability

    @property
    def scope(self) -> str:
        # `scope` is being added to ScreenResult by the scope check; absent means in scope.
        return str(getattr(self.result, "scope", "") or "") if self.result is not None else ""

    @property
    def withheld(self) -> bool:
        """Out of scope and not screened anyway: no NORMAL/PNEUMONIA call is shown."""
        return bool(self.scope) and self.override is None

    @property
    def group(self) -> tuple[str, str]:
        return self.patient, self.study_uid


@dataclass
class StudyGroup:
    """One patient's study: its images and the study-level result."""
    patient: str
    study_uid: str
    keys: list[str] = field(default_factory=list)
    probability: float | None = None  # the highest in-scope image probability
    call: str | None = None  # PNEUMONIA when any image is positive at the threshold
    views: list[str] = field(default_factory=list)


def group_of(key: str, folder: Path | None, meta: dict | None) -> tuple[str, str, str]:
    """(patient, study, view) from DICOM tags, else from the folder or the file name.

    JPEG/PNG: an image in its own sub-folder (not NORMAL/PNEUMONIA) takes the
    folder's name as the patient; otherwise core.training.dataset.patient_id reads it
    from the file name (`person12_...`, `IM-0115-0001`).
    """
    from core.training.dataset import patient_id
    from core.imaging.loader import LABELS

    meta = meta or {}
    view = str(meta.get("ViewPosition") or "").strip().upper()
    dicom_patient = str(meta.get("PatientID") or "").strip()
    path = Path(key)
    parent = path.parent
    inside = folder is not None and parent != folder and folder in parent.parents
    if dicom_patient:
        patient = dicom_patient
    elif inside and parent.name.upper() not in LABELS:
        patient = parent.name
    else:
        # File-name rules only (dicom_patient="" reads no header: this runs on the GUI thread).
        patient = patient_id(path, dicom_patient="")
        if patient.startswith("file:"):  # unknown pattern: the file is its own patient
            patient = _relative_stem(path, folder)
    study = str(meta.get("StudyInstanceUID") or "").strip() or patient
    return patient, study, view


def _relative_stem(path: Path, folder: Path | None) -> str:
    """`sub/name` without the suffix: unique within the study, and never a local path."""
    try:
        relative = path.relative_to(folder) if folder is not None else Path(path.name)
    except ValueError:
        relative = Path(path.name)
    return relative.with_suffix("").as_posix()


@dataclass
class _Ticket:
    """An undoable decision: what the row showed before, and the stored record once written."""
    key: str
    previous: object
    provisional: object
    stored: object = None
    slot: str = "decision"  # the Row attribute it set: "decision" or "override"


@dataclass
class ProvisionalDecision:
    """Shown at once while the store writes the real record (same fields the view reads)."""
    path: str
    decision: str
    ai_call: str | None
    reader_label: str | None
    probability: float | None
    threshold: float
    model: str
    reader: str
    time: str = field(default_factory=_utc_now)
    id: int = 0
    undone: bool = False
    reason: str = ""


def decision_text(decision, current_call: str | None) -> str:
    """The decision against the AI call it was made on and, if different, the current one.

    'Agree: PNEUMONIA', 'Disagree: AI said NORMAL', 'Agree: PNEUMONIA (AI now NORMAL)'.
    """
    if decision is None:
        return ""
    verb = decision.decision.capitalize()
    made_on = decision.ai_call or "-"
    text = f"{verb}: {decision.reader_label}" if decision.decision == AGREE else \
        f"{verb}: AI said {made_on}"
    if current_call is not None and decision.ai_call is not None and current_call != decision.ai_call:
        text += f" (AI now {current_call})"
    return text


def _immediate(store):
    def submit(job, on_done=None):
        value = job(store)
        if on_done is not None:
            on_done(value)
    return submit


class ReadingSession:
    def __init__(self, store=None, submit=None, threshold: float = 0.5, reader: str = "",
                 band: float = UNCERTAIN_BAND):
        self._submit = submit or _immediate(store)
        self._listeners: list[Listener] = []
        self._threshold = float(threshold)
        self.band = band
        self.reader = reader
        self.model_label = ""
        self.folder: Path | None = None
        self.truth_known = False
        self.signed_off = None  # core.reading.store.SignOff of the open study, or None
        self._rows: dict[str, Row] = {}
        self._order_name = ORDER_GROUPED
        self._descending = False
        self._ordered: list[str] | None = None  # cache
        self._visible: list[str] | None = None  # cache
        self._groups: list[StudyGroup] | None = None  # cache
        self._filter = FILTER_ALL
        self._queue_kind: str | None = None
        self._queue: list[str] = []
        self._current: str | None = None
        self._undo: list[_Ticket] = []

    # -- events --------------------------------------------------------------

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def unsubscribe(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _emit(self, event: str, payload=None) -> None:
        for listener in list(self._listeners):
            listener(event, payload)

    # -- the study -----------------------------------------------------------

    def open_study(self, folder, files=(), truth: dict | None = None) -> None:
        """A new study: every file is a row (unscreened); filters, queue and undo start afresh."""
        self.folder = Path(folder) if folder is not None else None
        truth = dict(truth or {})
        self.truth_known = bool(truth)
        self._rows = {}
        for key in files:
            key = str(key)
            patient, study, view = group_of(key, self.folder, None)
            self._rows[key] = Row(key=key, file=self._relative(key), truth=truth.get(key),
                                  patient=patient, study_uid=study, view=view)
        self._filter = FILTER_ALL
        self._queue_kind, self._queue = None, []
        self._current = None
        self._undo.clear()
        self.signed_off = None
        self._invalidate()
        self._emit(STUDY, self.folder)

    def _relative(self, key: str) -> str:
        if self.folder is not None:
            try:
                return Path(key).relative_to(self.folder).as_posix()
            except ValueError:
                pass
        return Path(key).name

    def add_results(self, results) -> list[str]:
        """Show screening results (new files become rows); returns their keys."""
        keys = []
        for result in results:
            key = str(Path(result.path).resolve())
            row = self._rows.get(key)
            if row is None:
                row = self._rows[key] = Row(key=key, file=self._relative(key))
            row.result = result
            row.patient, row.study_uid, row.view = group_of(key, self.folder, result.meta)
            keys.append(key)
        if keys:
            self._invalidate()
            self._emit(ROWS, keys)
        return keys

    def set_decisions(self, decisions: dict) -> None:
        """path key -> newest decision (e.g. core.reading.store.ResultStore.image_decisions)."""
        for key, row in self._rows.items():
            row.decision = decisions.get(key)
        self._invalidate()
        self._emit(ROWS, None)

    def set_overrides(self, overrides: dict) -> None:
        """path key -> newest SCREEN_ANYWAY decision (core.reading.store.ResultStore.image_overrides)."""
        for key, row in self._rows.items():
            row.override = overrides.get(key)
        self._invalidate()
        self._emit(ROWS, None)

    def set_signed_off(self, sign_off) -> None:
        self.signed_off = sign_off
        self._emit(SIGNOFF, sign_off)

    # -- reading the rows ----------------------------------------------------

    def row(self, key: str | None) -> Row | None:
        return self._rows.get(key) if key is not None else None

    def rows(self) -> list[Row]:
        """Every row in the current order."""
        return [self._rows[key] for key in self.ordered_keys()]

    def __len__(self) -> int:
        return len(self._rows)

    def ai_call(self, row: Row) -> str | None:
        """The call at the current threshold (OUT_OF_SCOPE for images outside the model's scope)."""
        if row.probability is None:
            return None
        return OUT_OF_SCOPE if row.withheld else classify(row.probability, self._threshold)

    def call_text(self, row: Row) -> str:
        """The call as shown everywhere: 'PNEUMONIA (screened anyway: lateral view)' after an override."""
        call = self.ai_call(row)
        if call is None:
            return ""
        if row.scope and row.override is not None:
            return f"{call} (screened anyway: {row.scope})"
        return call

    def decision_text(self, row: Row) -> str:
        return decision_text(row.decision, self.ai_call(row))

    def cell(self, row: Row) -> str | None:
        """Confusion-matrix cell at the current threshold (None: unknown, unscreened or out of scope)."""
        if row.withheld:
            return None
        return outcome(row.probability, row.truth, self._threshold)

    def needs_review(self, row: Row) -> bool:
        """Mistakes when the truth is known; AI positives and uncertain calls otherwise."""
        if row.probability is None or row.withheld:
            return False
        if row.truth is not None:
            return self.cell(row) in (FALSE_NEGATIVE, FALSE_POSITIVE)
        return (classify(row.probability, self._threshold) == POSITIVE
                or is_uncertain(row.probability, self._threshold, self.band))

    def is_changed_call(self, row: Row) -> bool:
        """Decided on another AI call than the current one (the threshold or model moved)."""
        call = self.ai_call(row)
        return row.decision is not None and call is not None and row.decision.ai_call not in (None, call)

    def matches(self, row: Row, name: str) -> bool:
        if name == FILTER_AI_POSITIVE:
            return self.ai_call(row) == POSITIVE
        if name == FILTER_NEEDS_REVIEW:
            return self.needs_review(row)
        if name == FILTER_DISAGREEMENTS:
            return row.decision is not None and row.decision.decision == DISAGREE
        if name == FILTER_CHANGED:
            return self.is_changed_call(row)
        if name == FILTER_OUT_OF_SCOPE:
            return bool(row.scope)
        if name == FILTER_UNSCREENED:
            return not row.screened
        if name == FILTER_ERRORS:
            return row.error is not None
        if name == FILTER_QUEUE:
            return row.key in self._queue_set
        return True

    # -- order and filter ----------------------------------------------------

    def _invalidate(self) -> None:
        self._ordered = None
        self._visible = None
        self._groups = None

    def set_order(self, name: str, descending: bool = False) -> None:
        if name not in (ORDER_GROUPED, ORDER_FILE, ORDER_PROBABILITY):
            raise ValueError(f"unknown order {name!r}")
        self._order_name, self._descending = name, bool(descending)
        self._invalidate()
        self._emit(FILTER, self._filter)

    @property
    def order(self) -> tuple[str, bool]:
        return self._order_name, self._descending

    def ordered_keys(self) -> list[str]:
        if self._ordered is None:
            rows = list(self._rows.values())
            if self._order_name == ORDER_PROBABILITY:
                # Unscreened and failed rows stay last either way.
                scored = [r for r in rows if r.probability is not None]
                rest = [r for r in rows if r.probability is None]
                scored.sort(key=lambda r: (r.probability, natural_key(r.file)), reverse=self._descending)
                rest.sort(key=lambda r: natural_key(r.file))
                rows = scored + rest
            else:
                if self._order_name == ORDER_GROUPED:
                    key = lambda r: (natural_key(r.patient), r.study_uid,  # noqa: E731
                                     _VIEW_RANK.get(r.view, 3), natural_key(r.file))
                else:
                    key = lambda r: natural_key(r.file)  # noqa: E731
                rows.sort(key=key, reverse=self._descending)
            self._ordered = [r.key for r in rows]
        return self._ordered

    @property
    def filter(self) -> str:
        return self._filter

    def set_filter(self, name: str) -> None:
        """Filter the table; a filter replaces an open queue. The cursor stays on a listed image."""
        if name not in FILTERS and name != FILTER_QUEUE:
            raise ValueError(f"unknown filter {name!r}")
        if name != FILTER_QUEUE and self._queue_kind is not None:
            self._queue_kind, self._queue = None, []
            self._emit(QUEUE, None)
        self._filter = name
        self._visible = None
        self._emit(FILTER, name)
        self._keep_cursor_visible()

    def visible_keys(self) -> list[str]:
        """The rows the table lists, in order (the table's row i is this list's item i)."""
        if self._visible is None:
            if self._filter == FILTER_QUEUE:
                self._visible = list(self._queue)
            else:
                self._visible = [k for k in self.ordered_keys() if self.matches(self._rows[k], self._filter)]
        return self._visible

    def filter_counts(self) -> dict[str, int]:
        rows = list(self._rows.values())
        return {name: sum(1 for r in rows if self.matches(r, name)) for name in FILTERS}

    # -- threshold -----------------------------------------------------------

    @property
    def threshold(self) -> float:
        return self._threshold

    def set_threshold(self, value: float) -> None:
        """Re-label every row; the model is not re-run. An open queue is rebuilt, keeping the cursor."""
        value = float(value)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"threshold must be within [0, 1], got {value}")
        if abs(value - self._threshold) < 1e-12:
            return
        self._threshold = value
        self._invalidate()
        if self._queue_kind is not None:
            self._queue = self._queue_keys(self._queue_kind)
        self._emit(THRESHOLD, value)
        self._keep_cursor_visible()

    # -- counts --------------------------------------------------------------

    def counts(self) -> dict:
        """What the status bar and the matrix show; moves as results and decisions arrive."""
        rows = list(self._rows.values())
        cells = dict.fromkeys(CELL_NAMES, 0)
        for row in rows:
            cell = self.cell(row)
            if cell is not None:
                cells[cell] += 1
        needs = [r for r in rows if self.needs_review(r)]
        return {
            "total": len(rows),
            "screened": sum(1 for r in rows if r.screened),
            "unscreened": sum(1 for r in rows if not r.screened),
            "errors": sum(1 for r in rows if r.error is not None),
            "out_of_scope": sum(1 for r in rows if r.scope),
            "decided": sum(1 for r in rows if r.decision is not None),
            "needs_review": len(needs),
            "needs_review_left": sum(1 for r in needs if r.decision is None),
            "cells": cells,
        }

    def groups(self) -> list[StudyGroup]:
        """Patient studies in order, each with its study-level result at the current threshold."""
        if self._groups is None:
            self._groups = self._make_groups()
        return self._groups

    def _make_groups(self) -> list[StudyGroup]:
        groups: dict[tuple[str, str], StudyGroup] = {}
        for key in self.ordered_keys() if self._order_name == ORDER_GROUPED else self._grouped_keys():
            row = self._rows[key]
            group = groups.setdefault(row.group, StudyGroup(row.patient, row.study_uid))
            group.keys.append(key)
            if row.view and row.view not in group.views:
                group.views.append(row.view)
            if row.probability is not None and not row.withheld:
                group.probability = max(group.probability or 0.0, row.probability)
        for group in groups.values():
            group.call = classify(group.probability, self._threshold)
        return list(groups.values())

    def _grouped_keys(self) -> list[str]:
        return sorted(self._rows, key=lambda k: (natural_key(self._rows[k].patient), self._rows[k].study_uid,
                                                 natural_key(self._rows[k].file)))

    def group_result(self, key: str) -> StudyGroup | None:
        row = self.row(key)
        if row is None:
            return None
        return next((g for g in self.groups() if (g.patient, g.study_uid) == row.group), None)

    # -- review queue --------------------------------------------------------

    def _queue_keys(self, kind: str) -> list[str]:
        rows = list(self._rows.values())
        t = self._threshold
        if kind in CELL_NAMES:
            members = [r for r in rows if self.cell(r) == kind]
            # Mistakes: the most confident first; correct calls: the closest to the threshold first.
            order = {FALSE_NEGATIVE: lambda r: r.probability, FALSE_POSITIVE: lambda r: -r.probability}.get(
                kind, lambda r: abs(r.probability - t))
            return [r.key for r in sorted(members, key=order)]
        if kind == NEEDS_REVIEW:
            keys = self._queue_keys(FALSE_NEGATIVE) + self._queue_keys(FALSE_POSITIVE)
            unknown = [r for r in rows if r.truth is None and self.needs_review(r)]
            return keys + [r.key for r in sorted(unknown, key=lambda r: abs(r.probability - t))]
        if kind == OUT_OF_SCOPE_QUEUE:
            return [k for k in self.ordered_keys() if self._rows[k].scope]
        raise ValueError(f"unknown queue {kind!r}")

    @property
    def queue_kind(self) -> str | None:
        return self._queue_kind

    @property
    def queue(self) -> list[str]:
        return list(self._queue)

    @property
    def _queue_set(self) -> set:
        return set(self._queue)

    def open_queue(self, kind: str) -> str | None:
        """Open a queue (a matrix cell, needs review, out of scope): the table lists it and the
        cursor resumes at its first undecided image. Returns the current key."""
        self._queue = self._queue_keys(kind)
        self._queue_kind = kind
        self._filter = FILTER_QUEUE
        self._visible = None
        self._emit(QUEUE, kind)
        self._emit(FILTER, FILTER_QUEUE)
        start = next((k for k in self._queue if self._rows[k].decision is None),
                     self._queue[0] if self._queue else None)
        self.go_to(start)
        return self._current

    def close_queue(self) -> None:
        self.set_filter(FILTER_ALL)

    def queue_text(self) -> str:
        """'False negatives: 3 of 18 (15 to decide)', or what to do when no queue is open."""
        if self._queue_kind is None:
            return "No queue open: pick a matrix cell or Needs review"
        title = QUEUE_TITLES.get(self._queue_kind, self._queue_kind)
        if not self._queue:
            return f"{title}: empty"
        left = sum(1 for k in self._queue if self._rows[k].decision is None)
        position = self._queue.index(self._current) + 1 if self._current in self._queue else 0
        return f"{title}: {position} of {len(self._queue)} ({left} to decide)"

    # -- cursor --------------------------------------------------------------

    @property
    def current(self) -> str | None:
        return self._current

    def go_to(self, key: str | None) -> bool:
        if key is not None and key not in self._rows:
            return False
        if key != self._current:
            self._current = key
            self._emit(CURSOR, key)
        return True

    def step(self, direction: int) -> str | None:
        """Next (+1) or previous (-1) in the table's list (the queue when one is open)."""
        keys = self.visible_keys()
        if not keys:
            return self._current
        if self._current in keys:
            index = min(max(keys.index(self._current) + direction, 0), len(keys) - 1)
        else:
            index = self._nearest_listed(keys, direction)
        self.go_to(keys[index])
        return self._current

    def _nearest_listed(self, keys: list[str], direction: int) -> int:
        # The current image left the list (e.g. a decision took it out of a filter):
        # continue from where it stood in the full order.
        position = {k: i for i, k in enumerate(self.ordered_keys())}
        here = position.get(self._current, -1)
        if direction > 0:
            return next((i for i, k in enumerate(keys) if position[k] > here), len(keys) - 1)
        before = [i for i, k in enumerate(keys) if position[k] < here]
        return before[-1] if before else 0

    def next(self) -> str | None:
        return self.step(+1)

    def previous(self) -> str | None:
        return self.step(-1)

    @property
    def at_end(self) -> bool:
        keys = self.visible_keys()
        return bool(keys) and self._current == keys[-1]

    def _keep_cursor_visible(self) -> None:
        keys = self.visible_keys()
        if self._current not in keys:
            self.go_to(keys[0] if keys else None)

    # -- decisions -----------------------------------------------------------

    def decide(self, decision: str, advance: bool = True) -> bool:
        """Record the reader's decision on the current image (shown at once, written via
        submit), then move on. False when there is nothing to decide on."""
        row = self.row(self._current)
        if row is None or row.probability is None or self.folder is None:
            return False
        ai_call = self.ai_call(row)
        if ai_call == OUT_OF_SCOPE:
            ai_call = classify(row.probability, self._threshold)
        result, threshold, folder, reader = row.result, self._threshold, self.folder, self.reader
        provisional = ProvisionalDecision(
            path=row.key, decision=decision, ai_call=ai_call, reader_label=reader_label(decision, ai_call),
            probability=row.probability, threshold=threshold, model=result.model, reader=reader)
        ticket = _Ticket(row.key, row.decision, provisional)
        row.decision = provisional
        self._undo.append(ticket)
        self._invalidate_filter_only()

        def write(store):
            ticket.stored = store.record_decision(
                folder, ticket.key, decision, ai_call=ai_call, model=result.model,
                model_hash=result.model_hash, probability=provisional.probability,
                threshold=threshold, reader=reader)
            return ticket.stored

        self._submit(write, lambda stored: self._saved(ticket, stored))
        self._emit(DECISION, row.key)
        if advance:
            self.next()
        return True

    def screen_anyway(self) -> str | None:
        """Show the AI call on the current out-of-scope image: recorded (who, when, model, the
        scope reason overridden) as a SCREEN_ANYWAY decision, undone like any decision. It is
        not a reader label. Returns why not, or None when done."""
        row = self.row(self._current)
        if row is None:
            return "no image is selected"
        if not row.scope:
            return "this image is within the model's scope"
        if row.probability is None:
            return "this image has no AI result"
        if row.override is not None:
            return "this image is already screened anyway"
        if self.folder is None:
            return "no study is open"
        result, threshold, folder, reader, reason = row.result, self._threshold, self.folder, self.reader, row.scope
        ai_call = classify(row.probability, threshold)
        provisional = ProvisionalDecision(
            path=row.key, decision=SCREEN_ANYWAY, ai_call=ai_call, reader_label=None,
            probability=row.probability, threshold=threshold, model=result.model, reader=reader, reason=reason)
        ticket = _Ticket(row.key, row.override, provisional, slot="override")
        row.override = provisional
        self._undo.append(ticket)
        self._invalidate()
        if self._queue_kind is not None and self._queue_kind != OUT_OF_SCOPE_QUEUE:
            self._queue = self._queue_keys(self._queue_kind)

        def write(store):
            ticket.stored = store.record_decision(
                folder, ticket.key, SCREEN_ANYWAY, ai_call=ai_call, model=result.model,
                model_hash=result.model_hash, probability=provisional.probability,
                threshold=threshold, reader=reader, reason=reason)
            return ticket.stored

        self._submit(write, lambda stored: self._saved(ticket, stored))
        self._emit(DECISION, row.key)
        self._emit(ROWS, [row.key])
        return None

    def _invalidate_filter_only(self) -> None:
        if self._filter != FILTER_QUEUE:
            self._visible = None

    def _saved(self, ticket: _Ticket, stored) -> None:
        row = self.row(ticket.key)
        if row is not None and getattr(row, ticket.slot) is ticket.provisional:
            setattr(row, ticket.slot, stored)
            self._emit(DECISION, ticket.key)

    def undo(self) -> str | None:
        """Take back the newest decision of this session; returns its key (None: nothing to undo)."""
        if not self._undo:
            return None
        ticket = self._undo.pop()
        row = self.row(ticket.key)
        if row is not None:
            setattr(row, ticket.slot, ticket.previous)
        if ticket.slot == "override":  # the call itself changes back to OUT_OF_SCOPE
            self._invalidate()
            self._emit(ROWS, [ticket.key])
        else:
            self._invalidate_filter_only()

        def undo(store):
            # The store runs jobs in order, so the write has happened and set `stored`.
            if ticket.stored is not None:
                store.undo_decision(ticket.stored.id)

        self._submit(undo, None)
        self._emit(DECISION, ticket.key)
        self.go_to(ticket.key)
        return ticket.key

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    # -- sign-off ------------------------------------------------------------

    def sign_off(self, on_done=None) -> str | None:
        """Sign the study off as the current reader. Returns why not, or None when submitted."""
        if self.folder is None:
            return "no study is open"
        if not self.reader.strip():
            return "set your reader name first (Settings)"
        counts = self.counts()
        if counts["unscreened"]:
            return f"{counts['unscreened']} images are not screened yet"
        folder, reader, model, images = self.folder, self.reader, self.model_label, counts["total"]

        def done(sign_off):
            if self.folder == folder:
                self.set_signed_off(sign_off)
            if on_done is not None:
                on_done(sign_off)

        self._submit(lambda store: store.sign_off(folder, reader, model, images), done)
        return None

    def reopen(self) -> None:
        """Withdraw the study's sign-off."""
        folder = self.folder
        if folder is None:
            return
        self._submit(lambda store: store.withdraw_sign_off(folder), None)
        self.set_signed_off(None)
