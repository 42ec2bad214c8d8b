"""The records of the reading: reader decisions (and their kinds), sign-offs, amendments.

Plain dataclasses shared by the store (which writes them), the session (which shows
them) and the report (which prints them). No database, no Qt.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

from core.screening.results import AGREE, DECISIONS, DISAGREE, OUT_OF_SCOPE, SCREEN_ANYWAY, UNSURE

# The reader's answer on an out-of-scope image whose call stays withheld: "yes, this
# image is outside what the model knows". Its own kind: never a reader label.
CONFIRM_OUT_OF_SCOPE = "confirm_out_of_scope"
# What a row's decision can be (the newest one counts) ...
ROW_DECISIONS = DECISIONS + (CONFIRM_OUT_OF_SCOPE,)
# ... and every kind the store records (SCREEN_ANYWAY is the override of a withheld call).
RECORDED_KINDS = ROW_DECISIONS + (SCREEN_ANYWAY,)
KIND_TEXT = {AGREE: "Agree", DISAGREE: "Disagree", UNSURE: "Unsure",
             CONFIRM_OUT_OF_SCOPE: "Confirmed out of scope", SCREEN_ANYWAY: "Screened anyway"}

__all__ = ["AGREE", "CONFIRM_OUT_OF_SCOPE", "DECISIONS", "DISAGREE", "KIND_TEXT", "OUT_OF_SCOPE",
           "RECORDED_KINDS", "ROW_DECISIONS", "SCREEN_ANYWAY", "UNSURE", "Amendment", "Decision",
           "SignOff", "utc_now"]


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def short_time(iso: str) -> str:
    """'2026-01-02 10:11 UTC' from a stored UTC ISO time."""
    return f"{iso[:16].replace('T', ' ')} UTC" if iso else ""


@dataclass
class Decision:
    id: int
    study: str
    path: str
    decision: str
    ai_call: str | None
    reader_label: str | None
    time: str  # UTC ISO 8601
    model: str
    model_hash: str
    probability: float | None
    threshold: float
    undone: bool
    reader: str = ""  # who decided ("" for decisions before readers were recorded)
    reason: str = ""  # SCREEN_ANYWAY / CONFIRM_OUT_OF_SCOPE: the scope reason


@dataclass
class SignOff:
    """A reader's sign-off of a study, with what it was signed on."""
    id: int
    study: str
    reader: str
    time: str  # UTC ISO 8601
    model: str
    images: int
    threshold: float | None = None  # None: signed before 0.4 recorded it
    counts: dict = field(default_factory=dict)  # the study's counts at sign-off
    software_version: str = ""  # the PneumoScan it was signed in ("": before 0.4.2 recorded it)

    def text(self) -> str:
        threshold = "" if self.threshold is None else f", threshold {self.threshold:.3f}"
        software = f", PneumoScan {self.software_version}" if self.software_version else ""
        return (f"Signed off by {self.reader} at {short_time(self.time)} "
                f"({self.images} images, {self.model}{threshold}{software})")


@dataclass
class Amendment:
    """A signed-off study re-opened: who, when, why (the sign-off stays in the history)."""
    id: int
    study: str
    signoff_id: int | None
    reader: str
    time: str
    reason: str

    def text(self) -> str:
        return f"Amended by {self.reader} at {short_time(self.time)}: {self.reason}"
