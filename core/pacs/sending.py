"""Results a reader sends from the desktop's Inbox: always through the inbox's persistent
outbox (core.pacs.outbox), the listener's own (`INBOX/.pneumoscan/`), so a destination
that is down loses nothing and one that refuses is shown as such. Qt-free; worker threads.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from core.pacs.outbox import MAX_REFUSALS, Outbox


def state_dir(inbox) -> Path:
    return Path(inbox) / ".pneumoscan"  # = core.pacs.inbox.Inbox(inbox).state_dir, without creating it


@contextmanager
def inbox_outbox(inbox) -> Iterator[Outbox]:
    outbox = Outbox(state_dir(inbox))
    try:
        yield outbox
    finally:
        outbox.close()


def study_deliveries(inbox) -> dict:
    """Per study UID, what the outbox sent, holds or gave up ({} while there is no outbox)."""
    if not (state_dir(inbox) / "outbox.sqlite3").is_file():
        return {}
    with inbox_outbox(inbox) as outbox:
        return outbox.study_deliveries()


def deliver_due(inbox, calling: str) -> int:
    """Send what is due in the inbox's outbox; returns how many the destinations stored."""
    from core.pacs.delivery import DeliveryWorker

    with inbox_outbox(inbox) as outbox:
        return DeliveryWorker(outbox, calling).deliver_due()


def send_study(export, node, calling: str, inbox, study_uid: str) -> str:
    """Queue a study's result objects (core.pacs.export.StudyExport) for `node`, try them at
    once, and say what became of them. Results sent before are not sent twice; refused or
    waiting ones are tried again now (the reader asked)."""
    from core.pacs.delivery import DeliveryWorker

    with inbox_outbox(inbox) as outbox:
        queued = sum(outbox.add(node, obj.dataset, key=obj.key, description=f"{obj.kind} for {Path(path).name}")
                     for path, obj in export.objects)
        outbox.retry_study(study_uid)
        DeliveryWorker(outbox, calling).deliver_due()
        state = outbox.study_deliveries(node).get(study_uid)
    skipped = f"; {len(export.skipped)} file(s) without DICOM results" if export.skipped else ""
    if state is None:
        return f"No result objects to send{skipped}"
    if state.refused or state.refusing:
        return (f"{node} refused {state.refused + state.refusing} result object(s): {state.last_error} "
                f"(retried up to {MAX_REFUSALS} times){skipped}")
    if state.waiting:
        return (f"{node} could not be reached: {state.waiting} result object(s) wait in the outbox and are "
                f"retried ({state.last_error}){skipped}")
    return f"Sent {state.sent} result object(s) to {node}" + (" (already sent before)" if not queued else "") + skipped
