"""A study's sign-off state: the current sign-off and the amendments that re-opened it.

A signed-off study is read-only (no decision, undo or screening again) until a reader
amends it, which is recorded (who, when, why) and printed in the report.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SignOffRecord:
    current: object = None  # core.reading.records.SignOff, or None while the study is open
    amendments: list = field(default_factory=list)  # core.reading.records.Amendment, oldest first

    @property
    def read_only(self) -> bool:
        return self.current is not None

    @property
    def read_only_reason(self) -> str | None:
        if self.current is None:
            return None
        return f"the study is {self.current.text()[0].lower()}{self.current.text()[1:]}: choose Amend to change it"

    def threshold_for(self, model_label: str) -> float | None:
        """The threshold the current sign-off was made at, when it was made with this model."""
        current = self.current
        if current is None or current.threshold is None or current.model != model_label:
            return None
        return float(current.threshold)

    def amended(self, amendment) -> "SignOffRecord":
        return SignOffRecord(None, [*self.amendments, amendment])

    def lines(self) -> list[str]:
        """The sign-off and every amendment, as the report and the sign-off box print them."""
        lines = [a.text() for a in self.amendments]
        if self.current is not None:
            lines.append(self.current.text())
        return lines or ["Not signed off"]


def open_questions(counts: dict) -> list[str]:
    """What is still undecided in a study's counts (core.reading.session counts)."""
    questions = []
    if counts["needs_review_left"]:
        questions.append(f"{counts['needs_review_left']} of {counts['needs_review']} images that need "
                         "review are undecided")
    if counts["out_of_scope_left"]:
        questions.append(f"{counts['out_of_scope_left']} out-of-scope images are neither confirmed "
                         "nor screened anyway")
    if counts["errors"]:
        questions.append(f"{counts['errors']} files could not be screened (errors)")
    return questions
