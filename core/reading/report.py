"""A study's report: one row per file of the study, sorted into the report's sections,
written as CSV and PDF (core.reading.report_pdf). Built from a ReadingSession, so the
window's export and `pneumoscan-cli report` give the same report.

Every file found in the study folder is accounted for: each image once, in the first
section it belongs to, and every file that is not an image under "Skipped files".
"""
from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path

from core.csvsafe import neutral_row
from core.imaging.discovery import display_path
from core.reading.cells import FALSE_NEGATIVE, FALSE_POSITIVE
from core.reading.records import DISAGREE, short_time
from core.reading.session import ERROR, UNSCREENED, WITHHELD
from core.screening.results import provenance_text

# Sections of the listing, in order; every file is in exactly one.
FALSE_NEGATIVES = "False negatives"
DISAGREEMENTS = "Reader disagreed, or the AI call changed since the reader decided"
FALSE_POSITIVES = "False positives"
OUT_OF_SCOPE = "Out of scope (AI call withheld)"
ERRORS = "Errors (not screened)"
SKIPPED = "Skipped files (not images)"
THE_REST = "All other images"
SECTIONS = (FALSE_NEGATIVES, DISAGREEMENTS, FALSE_POSITIVES, OUT_OF_SCOPE, ERRORS, SKIPPED, THE_REST)

# The CSV: the columns of `pneumoscan-cli report` first, then the columns the window's
# export has always written (kept, so existing readers keep working), then the record.
CSV_COLUMNS = ("path", "patient", "study", "probability", "prediction", "threshold", "model", "error", "scope",
               "decision", "reader", "decided_at", "decision_ai_call",
               "file", "patient_id", "view", "study_date", "ai_call", "truth", "reader_decision", "reader_label",
               "decision_time", "model_version", "model_hash", "status", "screened_anyway",
               "section", "reason", "decision_note", "signed_off", "amended",
               "software_version", "film_preparation")


@dataclass(frozen=True)
class ReportRow:
    file: str  # relative to the study folder: the only naming the PDF uses
    path: str  # full path (CSV only)
    patient: str
    study: str  # the patient's study (DICOM StudyInstanceUID, else the patient)
    section: str
    status: str  # screened | error | out of scope | not screened | skipped
    reason: str = ""  # why out of scope, the error, or why skipped
    view: str = ""
    study_date: str = ""
    probability: float | None = None
    threshold: float | None = None
    prediction: str | None = None  # the call shown (OUT_OF_SCOPE while withheld)
    truth: str | None = None
    decision: str | None = None
    reader_label: str | None = None
    decision_ai_call: str | None = None
    decision_note: str = ""  # e.g. "made on a withheld out-of-scope call: not a label"
    reader: str = ""
    decided_at: str | None = None
    model: str = ""
    model_version: str = ""
    model_hash: str = ""
    scope: str = ""
    screened_anyway: str = ""
    software_version: str = ""  # the PneumoScan that screened it ("" = not recorded)
    film_preparation: int | None = None  # core.imaging.preprocessing.FILM_PREPARATION at the time
    thumbnail: object = None  # uint8 (rows, cols) for the PDF, or None

    @property
    def provenance(self) -> str:
        """How its result was made, in words (ScreenResult.provenance); "" without a result."""
        if self.status in ("skipped", "not screened"):
            return ""
        return provenance_text(self.software_version, self.film_preparation)

    @property
    def changed_call(self) -> bool:
        return bool(self.decision and self.decision_ai_call and self.prediction and not self.decision_note
                    and self.decision_ai_call != self.prediction and self.decision != "confirm_out_of_scope")


@dataclass(frozen=True)
class ReportSummary:
    study: str  # the study's name (a folder name, not a path)
    model: str
    threshold: float
    exported_at: str
    reader: str = ""
    record: tuple = ()  # sign-off and amendment lines, oldest first
    signed_off: str = ""  # the current sign-off line, or ""
    amended: str = ""  # every amendment, "; "-joined
    readers: tuple = ()  # everyone whose decision is in the report


def summary_of(session, study_name: str, model: str, exported_at: str | None = None) -> ReportSummary:
    record = session.record
    readers = {getattr(row.decision, "reader", "") or "" for row in session.rows()} - {""}
    return ReportSummary(study=study_name, model=model, threshold=session.threshold,
                         exported_at=exported_at or now_text(), reader=session.reader,
                         record=tuple(record.lines()),
                         signed_off=record.current.text() if record.current is not None else "",
                         amended="; ".join(a.text() for a in record.amendments),
                         readers=tuple(sorted(readers)))


def _section(session, row, place: str) -> str:
    if place == FALSE_NEGATIVE:
        return FALSE_NEGATIVES
    if place == WITHHELD:
        return OUT_OF_SCOPE
    if place == ERROR:
        return ERRORS
    if row.decision is not None and (row.decision.decision == DISAGREE or session.is_changed_call(row)):
        return DISAGREEMENTS
    return FALSE_POSITIVES if place == FALSE_POSITIVE else THE_REST


def report_rows(session, skipped=(), thumbnails=None, folder: Path | None = None) -> list[ReportRow]:
    """Plain copies of every row of the session at its threshold, plus the skipped files
    (`skipped`: (path, reason)); safe to hand to a worker. `thumbnails(key)` may give a
    uint8 array per image for the PDF."""
    out = []
    for row in session.rows():
        r, d = row.result, row.decision
        place = session.place(row)
        meta = (r.meta if r is not None else None) or {}
        status = {UNSCREENED: "not screened", ERROR: "error", WITHHELD: "out of scope"}.get(place, "screened")
        reason = (row.error or row.scope) if place in (ERROR, WITHHELD) else ""
        unseen = row.decided_unseen
        out.append(ReportRow(
            file=row.file, path=row.key, patient=row.patient, study=row.study_uid,
            section=_section(session, row, place), status=status, reason=reason or "", view=row.view,
            study_date=str(meta.get("StudyDate", "")), probability=row.probability,
            threshold=session.threshold if r is not None else None, prediction=session.ai_call(row),
            truth=row.truth, decision=getattr(d, "decision", None), reader_label=None if unseen else getattr(
                d, "reader_label", None), decision_ai_call=getattr(d, "ai_call", None),
            decision_note="made on a withheld out-of-scope call: not a label" if unseen else "",
            reader=getattr(d, "reader", "") or "", decided_at=getattr(d, "time", None),
            model=getattr(r, "model", ""), model_version=str(getattr(r, "model_version", "") or ""),
            model_hash=getattr(r, "model_hash", ""), scope=row.scope,
            screened_anyway=f"(screened anyway: {row.scope})" if row.scope and row.override is not None else "",
            software_version=getattr(r, "software_version", ""), film_preparation=getattr(r, "film_preparation", None),
            thumbnail=thumbnails(row.key) if thumbnails is not None else None))
    base = folder if folder is not None else session.folder
    for path, reason in skipped:
        try:
            name = Path(path).relative_to(base).as_posix() if base is not None else Path(path).name
        except ValueError:
            name = Path(path).name
        out.append(ReportRow(file=display_path(name), path=display_path(path), patient="", study="",
                             section=SKIPPED, status="skipped", reason=reason))
    return out


def sections(rows: list[ReportRow]) -> list[tuple[str, list[ReportRow]]]:
    """The listing: every section in order with its rows (mistakes: the most confident first)."""
    order = {FALSE_NEGATIVES: lambda r: (r.probability, r.file), ERRORS: lambda r: r.file,
             SKIPPED: lambda r: r.file, OUT_OF_SCOPE: lambda r: r.file,
             THE_REST: lambda r: (r.status != "screened", -(r.probability or 0.0), r.file)}
    listing = []
    for title in SECTIONS:
        members = [r for r in rows if r.section == title]
        members.sort(key=order.get(title, lambda r: (-(r.probability or 0.0), r.file)))
        listing.append((title, members))
    return listing


def totals(rows: list[ReportRow]) -> dict[str, int]:
    """Counts at the top of the report; `files` = images + skipped, and the images add up."""
    images = [r for r in rows if r.status != "skipped"]
    screened = [r for r in images if r.status == "screened"]
    return {
        "files": len(rows),
        "images": len(images),
        "skipped": len(rows) - len(images),
        "screened": len(screened),
        "out_of_scope": sum(1 for r in images if r.status == "out of scope"),
        "errors": sum(1 for r in images if r.status == "error"),
        "not_screened": sum(1 for r in images if r.status == "not screened"),
        "ai_positive": sum(1 for r in screened if r.prediction == "PNEUMONIA"),
        "ai_negative": sum(1 for r in screened if r.prediction == "NORMAL"),
        "decided": sum(1 for r in images if r.decision),
        "disagreed": sum(1 for r in images if r.decision == DISAGREE),
        "changed_calls": sum(1 for r in images if r.changed_call),
        **{title: sum(1 for r in rows if r.section == title) for title in SECTIONS},
    }


def screened_with(rows: list[ReportRow]) -> list[tuple[str, int]]:
    """How the study's results were made: (provenance, images), the most images first. More
    than one line means the study mixes software or film preparations (screen it again to
    make it one)."""
    made = Counter(r.provenance for r in rows if r.provenance)
    return sorted(made.items(), key=lambda item: (-item[1], item[0]))


def write_csv(rows: list[ReportRow], path, summary: ReportSummary | None = None) -> Path:
    """One row per file (images and skipped files), written to a temporary name first."""
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for row in rows:
            record = {f.name: getattr(row, f.name) for f in fields(row)}
            if row.probability is not None:
                record["probability"] = f"{row.probability:.6f}"
            record.update(patient_id=row.patient, ai_call=row.prediction, reader_decision=row.decision,
                          decision_time=row.decided_at, error=row.reason if row.status == "error" else "",
                          signed_off=summary.signed_off if summary else "", amended=summary.amended if summary else "")
            # File names and DICOM text come from outside: neutralise formulas.
            writer.writerow(neutral_row({k: "" if record.get(k) is None else record.get(k) for k in CSV_COLUMNS}))
    tmp.replace(path)  # never leave a half-written export under the real name
    return path


def now_text() -> str:
    return datetime.now().strftime("%Y-%m-%d %H:%M")


def sign_off_text(sign_off) -> str:
    return f"by {sign_off.reader} at {short_time(sign_off.time)}" if sign_off is not None else ""
