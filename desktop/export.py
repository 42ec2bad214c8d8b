"""Exports of a screened study: a CSV of every result and a one-page PDF summary.

No Qt here: the window takes a snapshot (`snapshot_rows`) on the GUI thread and
a worker writes the files. The PDF is drawn with matplotlib's non-GUI canvas.
"""
from __future__ import annotations

import csv
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from core.csvsafe import neutral_row
from core.results import NEGATIVE, POSITIVE, classify

CSV_COLUMNS = ("file", "path", "patient_id", "study_date", "probability", "threshold", "ai_call",
               "truth", "reader_decision", "reader_label", "decision_time", "model",
               "model_version", "model_hash", "status", "error")
_MAX_POSITIVES_LISTED = 28


@dataclass(frozen=True)
class ExportRow:
    file: str
    path: str
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


@dataclass(frozen=True)
class ExportSummary:
    study: str
    model: str
    threshold: float
    exported_at: str


def snapshot_rows(study_rows, threshold: float) -> list[ExportRow]:
    """Plain copies of the table rows at the current threshold (safe to hand to a worker)."""
    out = []
    for row in study_rows:
        r, d = row.result, row.decision
        meta = r.meta or {}
        probability = None if r.error else r.probability
        out.append(ExportRow(
            file=row.file, path=row.key, patient_id=str(meta.get("PatientID", "")),
            study_date=str(meta.get("StudyDate", "")), probability=probability,
            threshold=threshold, ai_call=classify(probability, threshold), truth=row.truth,
            reader_decision=getattr(d, "decision", None), reader_label=getattr(d, "reader_label", None),
            decision_time=getattr(d, "time", None), model=r.model, model_version=str(r.model_version),
            model_hash=r.model_hash, status="error" if r.error else "screened", error=r.error))
    return out


def write_csv(rows: list[ExportRow], path) -> Path:
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    with open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for row in rows:
            record = asdict(row)
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
        "errors": sum(1 for r in rows if r.error),
        "ai_positive": sum(1 for r in rows if r.ai_call == POSITIVE),
        "ai_negative": sum(1 for r in rows if r.ai_call == NEGATIVE),
        "reader_decisions": len(decided),
        "reader_disagrees": sum(1 for r in decided if r.reader_label and r.reader_label != r.ai_call),
    }


def write_pdf(rows: list[ExportRow], summary: ExportSummary, path) -> Path:
    """One A4 page: counts, confusion matrix and ROC (truth known), positives list."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    counts = summary_counts(rows)
    with_truth = [r for r in rows if r.truth and r.probability is not None]
    fig = Figure(figsize=(8.27, 11.69))  # A4 portrait, inches
    FigureCanvasAgg(fig)
    fig.text(0.07, 0.965, "PneumoScan screening summary", fontsize=16, weight="bold")
    fig.text(0.07, 0.945, "Research use only. Not for diagnosis.", fontsize=9, color="#b03a2e")
    lines = [
        f"Study: {summary.study}",
        f"Model: {summary.model}    Threshold: {summary.threshold:.2f}    Exported: {summary.exported_at}",
        f"Images: {counts['images']}    Screened: {counts['screened']}    Errors: {counts['errors']}",
        f"AI positive: {counts['ai_positive']}    AI negative: {counts['ai_negative']}    "
        f"Reader decisions: {counts['reader_decisions']} ({counts['reader_disagrees']} disagree with the AI)",
    ]
    fig.text(0.07, 0.93, "\n".join(lines), fontsize=8.5, va="top", family="monospace", linespacing=1.6)

    truth_classes = {r.truth for r in with_truth}
    if with_truth:
        from sklearn.metrics import confusion_matrix

        y_true = [1 if r.truth == POSITIVE else 0 for r in with_truth]
        y_call = [1 if r.ai_call == POSITIVE else 0 for r in with_truth]
        matrix = confusion_matrix(y_true, y_call, labels=[1, 0])  # rows truth, cols AI; positive first
        ax = fig.add_axes([0.09, 0.56, 0.36, 0.26])
        ax.imshow(matrix, cmap="Blues")
        for (i, j), value in np.ndenumerate(matrix):
            ax.text(j, i, str(value), ha="center", va="center", fontsize=14,
                    color="white" if value > matrix.max() / 2 else "black")
        ax.set_xticks([0, 1], ["AI pneumonia", "AI normal"])
        ax.set_yticks([0, 1], ["Truth\npneumonia", "Truth\nnormal"])
        tp, fn, fp, tn = matrix[0, 0], matrix[0, 1], matrix[1, 0], matrix[1, 1]
        sens = f"{tp / (tp + fn):.1%}" if tp + fn else "n/a"
        spec = f"{tn / (tn + fp):.1%}" if tn + fp else "n/a"
        ax.set_title(f"Confusion matrix (sensitivity {sens}, specificity {spec})", fontsize=9)
    if len(truth_classes) == 2:
        from sklearn.metrics import roc_auc_score, roc_curve

        y_true = [1 if r.truth == POSITIVE else 0 for r in with_truth]
        scores = [r.probability for r in with_truth]
        fpr, tpr, _ = roc_curve(y_true, scores)
        auc = roc_auc_score(y_true, scores)
        ax = fig.add_axes([0.57, 0.56, 0.36, 0.26])
        ax.plot(fpr, tpr, color="#1f618d", label=f"AUC {auc:.3f}")
        ax.plot([0, 1], [0, 1], color="#bbb", linestyle="--", linewidth=0.8)
        pos = [r for r in with_truth if r.truth == POSITIVE]
        neg = [r for r in with_truth if r.truth != POSITIVE]
        op_tpr = sum(r.ai_call == POSITIVE for r in pos) / len(pos)
        op_fpr = sum(r.ai_call == POSITIVE for r in neg) / len(neg)
        ax.plot([op_fpr], [op_tpr], "o", color="#b03a2e", label=f"threshold {summary.threshold:.2f}")
        ax.set_xlabel("False positive rate", fontsize=8)
        ax.set_ylabel("True positive rate", fontsize=8)
        ax.set_title("ROC curve", fontsize=9)
        ax.legend(loc="lower right", fontsize=8)
    elif not with_truth:
        fig.text(0.07, 0.7, "Truth unknown for this study: no confusion matrix or ROC curve.", fontsize=9)

    positives = sorted((r for r in rows if r.ai_call == POSITIVE), key=lambda r: -r.probability)
    listing = [f"{'probability':>11}  {'reader':<22} file"]
    for r in positives[:_MAX_POSITIVES_LISTED]:
        reader = f"{r.reader_decision} ({r.reader_label})" if r.reader_label else (r.reader_decision or "")
        listing.append(f"{r.probability:>11.3f}  {reader:<22} {r.file[:60]}")
    if len(positives) > _MAX_POSITIVES_LISTED:
        listing.append(f"... and {len(positives) - _MAX_POSITIVES_LISTED} more (see the CSV export)")
    if not positives:
        listing.append("(none)")
    fig.text(0.07, 0.50, f"AI positives ({len(positives)})", fontsize=11, weight="bold")
    fig.text(0.07, 0.485, "\n".join(listing), fontsize=7.5, va="top", family="monospace", linespacing=1.5)

    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    fig.savefig(tmp, format="pdf")
    tmp.replace(path)
    return path


def now_text() -> str:
    return datetime.now().strftime("%Y-%m-%d %H:%M")
