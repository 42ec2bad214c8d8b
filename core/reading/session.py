"""The reading session: one study as a reader works through it (no Qt, no TensorFlow).

`ReadingSession` is one facade over small models: rows and patients (core.reading.rows),
the filter, queue and cursor (core.reading.navigation), the decision log with undo
(core.reading.decisions) and the sign-off (core.reading.signoff). Views call its methods
and redraw on its events, plain callbacks `listener(event, payload)`: STUDY, ROWS (keys
or None), THRESHOLD, FILTER, QUEUE, CURSOR (key), DECISION (key), SIGNOFF.
Store writes go through `submit(job, on_done)` (default: at once; the GUI: a worker).
Every file stands in exactly one `place` (not screened, error, out of scope, a matrix
cell, unlabelled): counts, matrix and queues are built from it, so they add up.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from core.reading.cells import (CELL_NAMES, FALSE_NEGATIVE, FALSE_POSITIVE, NEEDS_REVIEW, UNCERTAIN_BAND,
                                is_uncertain, outcome)
from core.reading.decisions import (DecisionLog, ProvisionalDecision, decision_text,  # noqa: F401
                                    immediate_submit)
from core.reading.navigation import (FILTER_AI_POSITIVE, FILTER_ALL, FILTER_CHANGED,  # noqa: F401
                                     FILTER_DISAGREEMENTS, FILTER_ERRORS, FILTER_NEEDS_REVIEW,
                                     FILTER_OUT_OF_SCOPE, FILTER_QUEUE, FILTER_UNSCREENED, FILTERS,
                                     OUT_OF_SCOPE_QUEUE, QUEUE_TITLES, Navigator)
from core.reading.records import CONFIRM_OUT_OF_SCOPE, DECISIONS, DISAGREE, OUT_OF_SCOPE, SCREEN_ANYWAY
from core.reading.rows import (ORDER_FILE, ORDER_GROUPED, ORDER_PROBABILITY, Row, RowTable,  # noqa: F401
                               StudyGroup, group_of, natural_key)
from core.reading.signoff import SignOffRecord, open_questions
from core.screening.results import POSITIVE, classify

STUDY, ROWS, THRESHOLD, FILTER, QUEUE, CURSOR, DECISION, SIGNOFF = (
    "study", "rows", "threshold", "filter", "queue", "cursor", "decision", "signoff")
# Where a file stands (besides the four matrix cells).
UNSCREENED, ERROR, WITHHELD, UNLABELLED = "unscreened", "error", "out_of_scope", "unlabelled"

Listener = Callable[[str, object], None]


class ReadingSession:
    def __init__(self, store=None, submit=None, threshold: float = 0.5, reader: str = "",
                 band: float = UNCERTAIN_BAND):
        self._submit = submit or immediate_submit(store)
        self._listeners: list[Listener] = []
        self._threshold = float(threshold)
        self.band = band
        self.reader = reader
        self.model_label = ""
        self.truth_known = False
        self._table = RowTable()
        self._nav = Navigator(self._table.ordered_keys, lambda key, name: self.matches(self._table.rows[key], name))
        self._log = DecisionLog(self._submit, self._decision_changed)
        self.record = SignOffRecord()

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

    folder = property(lambda self: self._table.folder)  # Path | None

    def open_study(self, folder, files=(), truth: dict | None = None, patients: dict | None = None) -> None:
        """A new study: every file is a row (unscreened); filters, queue, undo and sign-off start afresh."""
        had_queue = self._nav.queue_kind is not None
        self.truth_known = bool(truth)
        self._table.reset(Path(folder) if folder is not None else None, files, dict(truth or {}),
                          dict(patients or {}))
        self._nav.reset()
        self._log.clear()
        self.record = SignOffRecord()
        self._emit(STUDY, self.folder)
        if had_queue:
            self._emit(QUEUE, None)  # decision buttons follow: no queue is open in the new study

    def add_results(self, results) -> list[str]:
        """Show screening results (new files become rows); returns their keys."""
        keys = [self._table.add_result(result) for result in results]
        if keys:
            self._changed_all()
            self._emit(ROWS, keys)
        return keys

    def set_decisions(self, decisions: dict) -> None:  # {key: newest decision} (store.image_decisions)
        self._set_slot("decision", decisions)

    def set_overrides(self, overrides: dict) -> None:  # {key: newest SCREEN_ANYWAY} (store.image_overrides)
        self._set_slot("override", overrides)

    def _set_slot(self, slot: str, records: dict) -> None:
        for key, row in self._table.rows.items():
            setattr(row, slot, records.get(key))
        self._changed_all()
        self._emit(ROWS, None)

    def set_signed_off(self, sign_off, amendments=None) -> None:
        """The study's sign-off (None: open); `amendments` None reads them from the store."""
        self.record = SignOffRecord(sign_off, list(amendments if amendments is not None else self.record.amendments))
        signed_at = self.record.threshold_for(self.model_label)
        if signed_at is not None and abs(signed_at - self._threshold) > 1e-12:
            self._relabel(signed_at)  # this model's calls as they were signed
        self._emit(SIGNOFF, sign_off)
        if amendments is None and self.folder is not None:
            folder = self.folder

            def loaded(record):
                if self.folder == folder:
                    self.record = SignOffRecord(self.record.current, list(record[1]))
                    self._emit(SIGNOFF, self.record.current)
            self._submit(lambda store: store.study_record(folder), loaded)

    signed_off = property(lambda self: self.record.current)

    def _changed_all(self) -> None:  # calls may have changed: every cache goes
        self._table.invalidate()
        self._nav.invalidate()

    # -- reading the rows ----------------------------------------------------

    def row(self, key: str | None) -> Row | None:
        return self._table.rows.get(key) if key is not None else None

    def rows(self) -> list[Row]:  # every row, in the current order
        return [self._table.rows[key] for key in self.ordered_keys()]

    def __len__(self) -> int:
        return len(self._table.rows)

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
        return decision_text(row.decision, self.ai_call(row), unseen=row.decided_unseen)

    def place(self, row: Row) -> str:
        """Where a file stands: UNSCREENED, ERROR, WITHHELD, a matrix cell or UNLABELLED (exactly one)."""
        if not row.screened:
            return UNSCREENED
        if row.error is not None:
            return ERROR
        if row.withheld:
            return WITHHELD
        return outcome(row.probability, row.truth, self._threshold) or UNLABELLED

    def cell(self, row: Row) -> str | None:
        """Confusion-matrix cell at the current threshold (None: unknown, unscreened or out of scope)."""
        place = self.place(row)
        return place if place in CELL_NAMES else None

    def needs_review(self, row: Row) -> bool:
        return self._needs_review_at(row, self.place(row))

    def _needs_review_at(self, row: Row, place: str) -> bool:
        """Mistakes when the truth is known; AI positives and uncertain calls otherwise."""
        if place in CELL_NAMES:
            return place in (FALSE_NEGATIVE, FALSE_POSITIVE)
        return place == UNLABELLED and (classify(row.probability, self._threshold) == POSITIVE
                                        or is_uncertain(row.probability, self._threshold, self.band))

    def is_changed_call(self, row: Row) -> bool:
        """Decided on another AI call than the current one (the threshold or model moved)."""
        call = self.ai_call(row)
        decision = row.decision
        return (decision is not None and decision.decision in DECISIONS and not row.decided_unseen
                and call is not None and decision.ai_call not in (None, call))

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
            return self.place(row) == WITHHELD
        if name == FILTER_UNSCREENED:
            return not row.screened
        if name == FILTER_ERRORS:
            return row.error is not None
        if name == FILTER_QUEUE:
            return row.key in set(self._nav.queue)
        return True

    # -- order and filter ----------------------------------------------------

    def set_order(self, name: str, descending: bool = False) -> None:
        self._table.set_order(name, descending)
        self._nav.invalidate()
        self._emit(FILTER, self._nav.filter)

    @property
    def order(self) -> tuple[str, bool]:
        return self._table.order_name, self._table.descending

    def ordered_keys(self) -> list[str]:
        return self._table.ordered_keys()

    @property
    def filter(self) -> str:
        return self._nav.filter

    def set_filter(self, name: str) -> None:
        """Filter the table; a filter replaces an open queue. The cursor stays on a listed image."""
        if self._nav.set_filter(name):
            self._emit(QUEUE, None)
        self._emit(FILTER, name)
        self._keep_cursor_visible()

    def visible_keys(self) -> list[str]:  # what the table lists: its row i is item i
        return self._nav.visible_keys()

    def filter_counts(self) -> dict[str, int]:
        rows = list(self._table.rows.values())
        return {name: sum(1 for r in rows if self.matches(r, name)) for name in FILTERS}

    # -- threshold -----------------------------------------------------------

    threshold = property(lambda self: self._threshold)

    def set_threshold(self, value: float, by_reader: bool = True) -> str | None:
        """Re-label every row (the model is not re-run; an open queue is rebuilt). Returns why not: the
        calls of a signed-off study are what was signed (`by_reader=False`: another model's own)."""
        value = float(value)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"threshold must be within [0, 1], got {value}")
        if abs(value - self._threshold) < 1e-12:
            return None
        if by_reader and self.record.read_only:
            return self.record.read_only_reason
        self._relabel(value)

    def _relabel(self, value: float) -> None:
        self._threshold = value
        self._changed_all()
        if self._nav.queue_kind is not None:
            self._nav.open_queue(self._nav.queue_kind, self.queue_keys(self._nav.queue_kind))
        self._emit(THRESHOLD, value)
        self._keep_cursor_visible()

    # -- counts --------------------------------------------------------------

    def counts(self) -> dict:
        """What the status bar, the matrix and the sign-off show. `places` sum to `total`."""
        rows = list(self._table.rows.values())
        places = dict.fromkeys((UNSCREENED, ERROR, WITHHELD, UNLABELLED, *CELL_NAMES), 0)
        needs, withheld = [], []
        for row in rows:
            place = self.place(row)
            places[place] += 1
            if place == WITHHELD:
                withheld.append(row)
            elif self._needs_review_at(row, place):
                needs.append(row)
        return {
            "total": len(rows),
            "screened": sum(1 for r in rows if r.screened),
            "unscreened": places[UNSCREENED],
            "errors": places[ERROR],
            "out_of_scope": places[WITHHELD],
            "out_of_scope_left": sum(1 for r in withheld if r.decision is None or r.decided_unseen),
            "screened_anyway": sum(1 for r in rows if r.scope and r.override is not None),
            "unlabelled": places[UNLABELLED],
            "decided": sum(1 for r in rows if r.decision is not None),
            "needs_review": len(needs),
            "needs_review_left": sum(1 for r in needs if r.decision is None),
            "cells": {cell: places[cell] for cell in CELL_NAMES},
            "places": places,
        }

    def groups(self) -> list[StudyGroup]:
        """Patient studies in order, each with its study-level result at the current threshold."""
        return list(self._table.groups(self._threshold).values())

    def group_result(self, key: str) -> StudyGroup | None:
        row = self.row(key)
        return None if row is None else self._table.groups(self._threshold).get(row.group)

    # -- review queue and cursor ----------------------------------------------

    def queue_keys(self, kind: str) -> list[str]:
        rows = list(self._table.rows.values())  # the sort keys below give the order
        t = self._threshold
        if kind in CELL_NAMES:
            members = [r for r in rows if self.cell(r) == kind]
            # Mistakes: the most confident first; correct calls: the closest to the threshold first.
            order = {FALSE_NEGATIVE: lambda r: r.probability, FALSE_POSITIVE: lambda r: -r.probability}.get(
                kind, lambda r: abs(r.probability - t))
            return [r.key for r in sorted(members, key=order)]
        if kind == NEEDS_REVIEW:
            keys = self.queue_keys(FALSE_NEGATIVE) + self.queue_keys(FALSE_POSITIVE)
            unknown = [r for r in rows if r.truth is None and self.needs_review(r)]
            return keys + [r.key for r in sorted(unknown, key=lambda r: abs(r.probability - t))]
        if kind == OUT_OF_SCOPE_QUEUE:  # in table order
            return [k for k in self.ordered_keys() if self.place(self._table.rows[k]) == WITHHELD]
        raise ValueError(f"unknown queue {kind!r}")

    @property
    def queue_kind(self) -> str | None:
        return self._nav.queue_kind

    @property
    def queue(self) -> list[str]:
        return list(self._nav.queue)

    def open_queue(self, kind: str) -> str | None:
        """Open a queue (a matrix cell, needs review, out of scope): the table lists it and the
        cursor resumes at its first undecided image. Returns the current key."""
        self._nav.open_queue(kind, self.queue_keys(kind))
        self._emit(QUEUE, kind)
        self._emit(FILTER, FILTER_QUEUE)
        queue = self._nav.queue
        self.go_to(next((k for k in queue if self._table.rows[k].decision is None), queue[0] if queue else None))
        return self.current

    def close_queue(self) -> None:
        self.set_filter(FILTER_ALL)

    def queue_text(self) -> str:
        """'False negatives: 3 of 18 (15 to decide)', or what to do when no queue is open."""
        return self._nav.queue_text(lambda key: self._table.rows[key].decision is None)

    @property
    def current(self) -> str | None:
        return self._nav.current

    def go_to(self, key: str | None) -> bool:
        if key is not None and key not in self._table.rows:
            return False
        if key != self._nav.current:
            self._nav.current = key
            self._emit(CURSOR, key)
        return True

    def step(self, direction: int) -> str | None:
        """Next (+1) or previous (-1) in the table's list (the queue when one is open)."""
        self.go_to(self._nav.step_target(direction))
        return self.current

    def next(self) -> str | None:
        return self.step(+1)

    def previous(self) -> str | None:
        return self.step(-1)

    @property
    def at_end(self) -> bool:
        return self._nav.at_end

    def _keep_cursor_visible(self) -> None:
        keys = self.visible_keys()
        if self.current not in keys:
            self.go_to(keys[0] if keys else None)

    # -- decisions: one path for every kind ---------------------------------------

    def refusal(self, kind: str, key: str | None = None) -> str | None:
        """Why `kind` cannot be recorded on the image (default: the current one), or None."""
        row = self.row(self.current if key is None else key)
        if self.folder is None:
            return "no study is open"
        if row is None:
            return "no image is selected"
        if self.record.read_only:
            return self.record.read_only_reason
        if row.probability is None:
            return "this image has no AI result" + (f" ({row.error})" if row.error else "")
        if kind == SCREEN_ANYWAY:
            if not row.scope:
                return "this image is within the model's scope"
            return "this image is already screened anyway" if row.override is not None else None
        if kind == CONFIRM_OUT_OF_SCOPE:
            return None if row.withheld else "only an out-of-scope image whose AI call is withheld can be confirmed"
        if kind in DECISIONS and row.withheld:
            return (f"this image is out of scope ({row.scope}) and its AI call is withheld: "
                    "Confirm out of scope, or Screen anyway to see the call first")
        return None if kind in DECISIONS else f"unknown decision {kind!r}"

    def decide(self, kind: str, advance: bool = True) -> str | None:
        """Record the reader's decision on the current image (shown at once, written via
        submit); decisions move on to the next image. Returns why not, or None when done."""
        problem = self.refusal(kind)
        if problem is not None:
            return problem
        row = self.row(self.current)
        if kind == SCREEN_ANYWAY:
            ai_call, reason = classify(row.probability, self._threshold), row.scope
        elif kind == CONFIRM_OUT_OF_SCOPE:
            ai_call, reason = OUT_OF_SCOPE, row.scope
        else:
            ai_call, reason = self.ai_call(row), ""
        self._log.record(row, kind, folder=self.folder, ai_call=ai_call, threshold=self._threshold,
                         reader=self.reader, reason=reason)
        if advance and kind != SCREEN_ANYWAY:  # after screen anyway the reader decides on the call shown
            self.next()
        return None

    def screen_anyway(self) -> str | None:  # shows the withheld call (recorded; not a label)
        return self.decide(SCREEN_ANYWAY)

    def confirm_out_of_scope(self) -> str | None:  # outside the model's scope, says the reader
        return self.decide(CONFIRM_OUT_OF_SCOPE)

    def _decision_changed(self, key: str, slot: str) -> None:
        if slot == "override":  # the call itself changed: every count and any cell queue
            self._changed_all()
            if self._nav.queue_kind not in (None, OUT_OF_SCOPE_QUEUE):
                self._nav.open_queue(self._nav.queue_kind, self.queue_keys(self._nav.queue_kind))
            self._emit(ROWS, [key])
        else:  # the order and the patient studies do not depend on decisions
            self._nav.invalidate_filter()
        self._emit(DECISION, key)

    def undo(self) -> str | None:
        """Take back this session's newest decision: its key, or None (see `undo_refusal`)."""
        if self.undo_refusal() is not None:
            return None
        key, _slot = self._log.undo(self._table.rows)
        self.go_to(key)
        return key

    def undo_refusal(self) -> str | None:
        return self.record.read_only_reason or (None if self._log.can_undo else "nothing to undo")

    @property
    def can_undo(self) -> bool:
        return self.undo_refusal() is None

    # -- sign-off and amend ----------------------------------------------------------

    def sign_off_questions(self) -> list[str]:
        """What is still open before signing off (the reader is asked about it)."""
        return open_questions(self.counts())

    def sign_off(self, on_done=None) -> str | None:
        """Sign the study off as the current reader, with the model, threshold and counts.
        Returns why not, or None when submitted."""
        if self.folder is None:
            return "no study is open"
        if not self.reader.strip():
            return "set your reader name first (Settings)"
        if self.record.read_only:
            return "the study is already signed off"
        counts = self.counts()
        if counts["unscreened"]:
            return f"{counts['unscreened']} images are not screened yet"
        folder, reader, model, threshold = self.folder, self.reader, self.model_label, self._threshold
        summary = {k: v for k, v in counts.items() if k != "places"}

        def done(sign_off):
            if self.folder == folder:
                self.set_signed_off(sign_off, self.record.amendments)
            if on_done is not None:
                on_done(sign_off)

        self._submit(lambda store: store.sign_off(folder, reader, model, counts["total"], threshold=threshold,
                                                  counts=summary), done)

    def amend(self, reason: str, on_done=None) -> str | None:
        """Re-open the signed-off study for changes; recorded with the reader and `reason`."""
        if not self.record.read_only:
            return "the study is not signed off"
        if not self.reader.strip():
            return "set your reader name first (Settings)"
        if not str(reason or "").strip():
            return "say why the study is amended"
        folder, reader = self.folder, self.reader

        def done(amendment):
            if self.folder == folder:
                self.record = self.record.amended(amendment)
                self._emit(SIGNOFF, None)
            if on_done is not None:
                on_done(amendment)

        self._submit(lambda store: store.amend(folder, reader, reason), done)
        return None

    read_only_reason = property(lambda self: self.record.read_only_reason)
