"""The reader's decision log: every kind of record goes through one path (`record`),
is shown at once (provisional), written through the caller's `submit`, and undone
newest first.

Kinds (core.reading.records): agree / disagree / unsure on the shown call; confirm out
of scope on a withheld out-of-scope image; screen anyway (the override that shows the
call of an out-of-scope image). The session decides which kinds a row may take.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from core.reading.records import AGREE, KIND_TEXT, SCREEN_ANYWAY, utc_now
from core.screening.results import reader_label


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
    time: str = field(default_factory=utc_now)
    id: int = 0
    undone: bool = False
    reason: str = ""


@dataclass
class _Ticket:
    """An undoable record: what the row showed before, and the stored record once written."""
    key: str
    slot: str  # the Row attribute it set: "decision" or "override"
    previous: object
    provisional: object
    stored: object = None


def immediate_submit(store):
    """A `submit(job, on_done)` that runs the job at once on `store` (scripts, tests, the CLI)."""
    def submit(job, on_done=None):
        value = job(store)
        if on_done is not None:
            on_done(value)
    return submit


def slot_of(kind: str) -> str:
    return "override" if kind == SCREEN_ANYWAY else "decision"


def decision_text(decision, current_call: str | None, unseen: bool = False) -> str:
    """The decision against the AI call it was made on and, if different, the current one.

    'Agree: PNEUMONIA', 'Disagree: AI said NORMAL', 'Agree: PNEUMONIA (AI now NORMAL)',
    'Confirmed out of scope: lateral view'. `unseen`: made while the call was withheld.
    """
    if decision is None:
        return ""
    verb = KIND_TEXT.get(decision.decision, decision.decision.capitalize())
    if decision.decision not in (AGREE, "disagree", "unsure"):
        reason = getattr(decision, "reason", "")
        return f"{verb}: {reason}" if reason else verb
    made_on = decision.ai_call or "-"
    text = f"{verb}: {decision.reader_label}" if decision.decision == AGREE else f"{verb}: AI said {made_on}"
    if unseen:
        return text + " (made on a withheld out-of-scope call: not a label)"
    if current_call is not None and decision.ai_call is not None and current_call != decision.ai_call:
        text += f" (AI now {current_call})"
    return text


class DecisionLog:
    """Records decisions on rows (shown at once, written via `submit`) and undoes them."""

    def __init__(self, submit, on_change):
        self._submit = submit
        self._on_change = on_change  # (key, slot): a row's decision or override changed
        self._undo: list[_Ticket] = []

    def clear(self) -> None:
        self._undo.clear()

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    def record(self, row, kind: str, *, folder, ai_call, threshold: float, reader: str, reason: str = "") -> None:
        """Show `kind` on `row` now and write it; the one path of every reader record."""
        result = row.result
        slot = slot_of(kind)
        provisional = ProvisionalDecision(
            path=row.key, decision=kind, ai_call=ai_call, reader_label=reader_label(kind, ai_call),
            probability=row.probability, threshold=threshold, model=result.model, reader=reader, reason=reason)
        ticket = _Ticket(row.key, slot, getattr(row, slot), provisional)
        setattr(row, slot, provisional)
        self._undo.append(ticket)

        def write(store):
            ticket.stored = store.record_decision(
                folder, ticket.key, kind, ai_call=ai_call, model=result.model, model_hash=result.model_hash,
                probability=provisional.probability, threshold=threshold, reader=reader, reason=reason)
            return ticket.stored

        def saved(stored, row=row):
            if getattr(row, slot) is provisional:
                setattr(row, slot, stored)
                self._on_change(row.key, slot)

        self._submit(write, saved)
        self._on_change(row.key, slot)

    def undo(self, rows: dict) -> tuple[str, str] | None:
        """Take back the newest record of this session: (key, slot), or None when there is none."""
        if not self._undo:
            return None
        ticket = self._undo.pop()
        row = rows.get(ticket.key)
        if row is not None:
            setattr(row, ticket.slot, ticket.previous)

        def undo(store):
            # The store runs jobs in order, so the write has happened and set `stored`.
            if ticket.stored is not None:
                store.undo_decision(ticket.stored.id)

        self._submit(undo, None)
        self._on_change(ticket.key, ticket.slot)
        return ticket.key, ticket.slot
