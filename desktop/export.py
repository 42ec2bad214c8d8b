"""Exports of a read study: a CSV of every image and a PDF report for the reading record.

No Qt here: the window takes a snapshot (`snapshot_rows`, plain values) on the
GUI thread and a worker writes the files.

The PDF puts what a second reader must see first: false negatives, then the
reader's disagreements, then calls that changed since the reader decided, then
the remaining AI positives, each with its thumbnail, patient id, view, AI call,
probability and the reader's decision with the reader's name. It names the
model and the reader, and never prints a local path: files by name only.
"""
from __future__ import annotations

import csv
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from pathlib import Path

from core.csvsafe import neutral_row
from core.screening.results import DISAGREE, NEGATIVE, POSITIVE

CSV_COLUMNS = ("file", "path", "patient_id", "view", "study_date", "probability", "threshold", "ai_call",
               "truth", "reader_decision", "reader_label", "decision_ai_call", "reader", "decision_time",
               "model", "model_version", "model_hash", "status", "error", "scope",
               "screened_anyway")

# Sections of the PDF listing, most important first.
FALSE_NEGATIVES, DISAGREEMENTS, CHANGED_CALLS, OTHER_POSITIVES = (
    "False negatives", "Reader disagreed with the AI", "AI call changed since the reader decided",
    "Other AI positives")


@dataclass(frozen=True)
class ExportRow:
    file: str  # relative to the study folder: the only file naming the PDF uses
    path: str  # full path (CSV only)
    patient_id: str
    study_date: str
    probability: float | None
    threshold: float
    ai_call: str | None
    truth: str | None
    reader_decision: str | None
    reader_label: str | None
    decision_time: str | None
    model: str
    model_version: str
    model_hash: str
    status: str
    error: str | None
    view: str = ""
    decision_ai_call: str | None = None  # the AI call the decision was made on
    reader: str = ""
    scope: str = ""
    screened_anyway: str = ""  # "(screened anyway: <reason>)" once the reader asked for the call
    thumbnail: object = None  # uint8 (rows, cols) for the PDF, or None

    @property
    def changed_call(self) -> bool:
        return bool(self.reader_decision and self.decision_ai_call and self.ai_call
                    and self.decision_ai_call != self.ai_call)


@dataclass(frozen=True)
class ExportSummary:
    study: str  # the study's name (a folder name, not a path)
    model: str
    threshold: float
    exported_at: str
    reader: str = ""
    signed_off: str = ""  # "by Dr A at ..." or ""


def snapshot_rows(session, thumbnails=None) -> list[ExportRow]:
    """Plain copies of the session's rows at its threshold (safe to hand to a worker).

    `thumbnails(key)` may give a uint8 array per image for the PDF.
    """
    out = []
    for row in session.rows():
        r, d = row.result, row.decision
        meta = (r.meta if r is not None else None) or {}
        status = "not screened" if r is None else ("error" if r.error else "screened")
        out.append(ExportRow(
            file=row.file, path=row.key, patient_id=row.patient, study_date=str(meta.get("StudyDate", "")),
            probability=row.probability, threshold=session.threshold, ai_call=session.ai_call(row),
            truth=row.truth, reader_decision=getattr(d, "decision", None),
            reader_label=getattr(d, "reader_label", None), decision_time=getattr(d, "time", None),
            model=getattr(r, "model", ""), model_version=str(getattr(r, "model_version", "")),
            model_hash=getattr(r, "model_hash", ""), status=status, error=getattr(r, "error", None),
            view=row.view, decision_ai_call=getattr(d, "ai_call", None), reader=getattr(d, "reader", "") or "",
            scope=row.scope, screened_anyway=_override_mark(row), thumbnail=thumbnails(row.key) if thumbnails is not None else None))
    return out


def _override_mark(row) -> str:
    return f"(screened anyway: {row.scope})" if row.scope and row.override is not None else ""


def write_csv(rows: list[ExportRow], path) -> Path:
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for row in rows:
            record = {f.name: getattr(row, f.name) for f in fields(row) if f.name in CSV_COLUMNS}
            if record["probability"] is not None:
                record["probability"] = f"{record['probability']:.6f}"
            # File names and DICOM text come from outside: neutralise formulas.
            writer.writerow(neutral_row({k: "" if record[k] is None else record[k] for k in CSV_COLUMNS}))
    tmp.replace(path)  # never leave a half-written export under the real name
    return path


def summary_counts(rows: list[ExportRow]) -> dict[str, int]:
    decided = [r for r in rows if r.reader_decision]
    return {
        "images": len(rows),
        "screened": sum(1 for r in rows if r.probability is not None),
        "not_screened": sum(1 for r in rows if r.status == "not screened"),
        "errors": sum(1 for r in rows if r.error),
        "ai_positive": sum(1 for r in rows if r.ai_call == POSITIVE),
        "ai_negative": sum(1 for r in rows if r.ai_call == NEGATIVE),
        "reader_decisions": len(decided),
        "reader_disagrees": sum(1 for r in decided if r.reader_decision == DISAGREE),
        "changed_calls": sum(1 for r in rows if r.changed_call),
    }


def report_sections(rows: list[ExportRow]) -> list[tuple[str, list[ExportRow]]]:
    """The PDF's listing: each image once, in the first section it belongs to."""
    seen: set[str] = set()
    sections = []
    rules = (
        (FALSE_NEGATIVES, lambda r: r.truth == POSITIVE and r.ai_call == NEGATIVE, lambda r: r.probability),
        (DISAGREEMENTS, lambda r: r.reader_decision == DISAGREE, lambda r: -(r.probability or 0)),
        (CHANGED_CALLS, lambda r: r.changed_call, lambda r: -(r.probability or 0)),
        (OTHER_POSITIVES, lambda r: r.ai_call == POSITIVE, lambda r: -(r.probability or 0)),
    )
    for title, wanted, order in rules:
        members = sorted((r for r in rows if r.path not in seen and r.probability is not None and wanted(r)),
                         key=order)
        seen.update(r.path for r in members)
        sections.append((title, members))
    return sections


def _short(text: str, limit: int = 48) -> str:
    """Middle ellipsis: the start and the end of a long name both stay readable on the page."""
    return text if len(text) <= limit else f"{text[:limit // 2 - 1]}…{text[-(limit // 2 - 1):]}"


def _entry_text(r: ExportRow) -> str:
    patient = f"patient {_short(r.patient_id, 32)}" if r.patient_id else "patient -"
    view = f" {r.view}" if r.view else ""
    truth = f", truth {r.truth}" if r.truth else ""
    line1 = f"{_short(Path(r.file).name)}   {patient}{view}"
    marked = f" {r.screened_anyway}" if r.screened_anyway else ""
    line2 = f"AI {r.ai_call}{marked} (p={r.probability:.3f}){truth}"
    if r.reader_decision:
        who = f" by {_short(r.reader, 28)}" if r.reader else ""
        made_on = f" on AI {r.decision_ai_call}" if r.decision_ai_call else ""
        line2 += f"   Reader: {r.reader_decision}{who}{made_on}"
    return f"{line1}\n{line2}"


def write_pdf(rows: list[ExportRow], summary: ExportSummary, path) -> Path:
    """Summary page (counts, matrix, ROC), then the listing: false negatives, disagreements,
    changed calls, other AI positives, with thumbnails. File names only, never paths."""
    import logging

    import matplotlib
    from matplotlib.backends.backend_pdf import PdfPages

    # The PDF core fonts are not installed as files; matplotlib says so on every text.
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)

    counts = summary_counts(rows)
    sections = report_sections(rows)
    entries = [(title, r) for title, members in sections for r in members]
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    # Uncompressed text streams: the report's words stay searchable by simple tools.
    with matplotlib.rc_context({"pdf.compression": 0, "pdf.use14corefonts": True}), PdfPages(tmp) as pdf:
        fig = _summary_page(rows, summary, counts, sections)
        if not entries:
            fig.text(0.07, 0.42, "No false negatives, disagreements, changed calls or AI positives.",
                     fontsize=9)
        done = _draw_entries(fig, entries, top=0.46)
        pdf.savefig(fig)
        while done < len(entries):
            fig = _new_page(summary)
            done += _draw_entries(fig, entries[done:], top=0.92)
            pdf.savefig(fig)
        info = pdf.infodict()
        info["Title"] = f"PneumoScan reading report: {summary.study}"
        info["Subject"] = "Research use only. Not for diagnosis."
    tmp.replace(path)
    return path


def _new_page(summary: ExportSummary):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.27, 11.69))  # A4 portrait, inches
    FigureCanvasAgg(fig)
    fig.text(0.07, 0.965, f"PneumoScan reading report: {summary.study}", fontsize=12, weight="bold")
    fig.text(0.07, 0.95, "Research use only. Not for diagnosis.", fontsize=8, color="#b03a2e")
    return fig


def _summary_page(rows, summary: ExportSummary, counts: dict, sections):
    import numpy as np

    fig = _new_page(summary)
    false_negatives = sum(1 for r in rows if r.truth == POSITIVE and r.ai_call == NEGATIVE)
    section_counts = (f"False negatives: {false_negatives}    Reader disagreed: {counts['reader_disagrees']}    "
                      f"Calls changed since decided: {counts['changed_calls']}")
    lines = [
        f"Study: {summary.study}    Exported: {summary.exported_at}",
        f"Model: {summary.model}    Threshold: {summary.threshold:.3f}",
        f"Reader: {summary.reader or '(not set)'}    "
        f"{'Signed off ' + summary.signed_off if summary.signed_off else 'Not signed off'}",
        f"Images: {counts['images']}    Screened: {counts['screened']}    Not screened: "
        f"{counts['not_screened']}    Errors: {counts['errors']}",
        f"AI positive: {counts['ai_positive']}    AI negative: {counts['ai_negative']}    "
        f"Reader decisions: {counts['reader_decisions']}",
        section_counts,
    ]
    fig.text(0.07, 0.93, "\n".join(lines), fontsize=8, va="top", family="monospace", linespacing=1.6)
    with_truth = [r for r in rows if r.truth and r.probability is not None and r.ai_call in (POSITIVE, NEGATIVE)]
    if with_truth:
        from sklearn.metrics import confusion_matrix

        y_true = [1 if r.truth == POSITIVE else 0 for r in with_truth]
        y_call = [1 if r.ai_call == POSITIVE else 0 for r in with_truth]
        matrix = confusion_matrix(y_true, y_call, labels=[1, 0])  # rows truth, cols AI; positive first
        # Generous left/bottom margins: tick and axis labels are never clipped.
        ax = fig.add_axes([0.16, 0.55, 0.28, 0.2])
        ax.imshow(matrix, cmap="Blues")
        for (i, j), value in np.ndenumerate(matrix):
            ax.text(j, i, str(value), ha="center", va="center", fontsize=13,
                    color="white" if value > matrix.max() / 2 else "black")
        ax.set_xticks([0, 1], ["AI pneumonia", "AI normal"], fontsize=8)
        ax.set_yticks([0, 1], ["Truth\npneumonia", "Truth\nnormal"], fontsize=8)
        tp, fn, fp, tn = matrix[0, 0], matrix[0, 1], matrix[1, 0], matrix[1, 1]
        sens = f"{tp / (tp + fn):.1%}" if tp + fn else "n/a"
        spec = f"{tn / (tn + fp):.1%}" if tn + fp else "n/a"
        ax.set_title(f"Sensitivity {sens}, specificity {spec}", fontsize=8)
        if len({r.truth for r in with_truth}) == 2:
            from sklearn.metrics import roc_auc_score, roc_curve

            scores = [r.probability for r in with_truth]
            fpr, tpr, _ = roc_curve(y_true, scores)
            ax = fig.add_axes([0.6, 0.55, 0.3, 0.2])
            ax.plot(fpr, tpr, color="#1f618d", label=f"AUC {roc_auc_score(y_true, scores):.3f}")
            ax.plot([0, 1], [0, 1], color="#bbb", linestyle="--", linewidth=0.8)
            pos = [r for r in with_truth if r.truth == POSITIVE]
            neg = [r for r in with_truth if r.truth != POSITIVE]
            ax.plot([sum(r.ai_call == POSITIVE for r in neg) / len(neg)],
                    [sum(r.ai_call == POSITIVE for r in pos) / len(pos)], "o", color="#b03a2e",
                    label=f"threshold {summary.threshold:.2f}")
            ax.set_xlabel("False positive rate", fontsize=8)
            ax.set_ylabel("True positive rate", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.set_title("ROC curve", fontsize=8)
            ax.legend(loc="lower right", fontsize=7)
    else:
        fig.text(0.07, 0.7, "Truth unknown for this study: no confusion matrix or ROC curve.", fontsize=9)
    return fig


def _draw_entries(fig, entries, top: float, bottom: float = 0.05) -> int:
    """Lines of the listing from `top` down: a heading when the section changes, then a
    thumbnail and text per image. Returns how many entries fitted on this page."""
    y = top
    step, heading = 0.066, 0.03
    current = None
    drawn = 0
    for title, r in entries:
        needed = step + (heading if title != current else 0.0)
        if y - needed < bottom:
            break
        if title != current:
            current = title
            fig.text(0.07, y, title, fontsize=10, weight="bold")
            y -= heading
        if r.thumbnail is not None:
            ax = fig.add_axes([0.07, y - step + 0.012, 0.07, step - 0.008])
            ax.imshow(r.thumbnail, cmap="gray", vmin=0, vmax=255)
            ax.set_axis_off()
        fig.text(0.16, y - 0.012, _entry_text(r), fontsize=8, va="top", linespacing=1.5)
        y -= step
        drawn += 1
    return max(drawn, 1) if entries else 0


def now_text() -> str:
    return datetime.now().strftime("%Y-%m-%d %H:%M")


__all__ = ["CSV_COLUMNS", "ExportRow", "ExportSummary", "asdict", "now_text", "report_sections",
           "snapshot_rows", "summary_counts", "write_csv", "write_pdf"]
