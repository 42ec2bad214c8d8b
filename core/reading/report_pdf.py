"""The study report as a PDF (matplotlib's Agg/PdfPages backend; no Qt).

Page 1: the study, the model, the reader and the record (sign-off, amendments), the
totals (they add up to the files found), the confusion matrix and ROC curve when the
truth is known. Then the listing, section by section (core.reading.report.SECTIONS),
with a thumbnail per image when one is given. File names are printed in full (long
ones wrap onto the next line), never a local path. Every page says "Page i of n".
"""
from __future__ import annotations

import logging
import textwrap
from pathlib import Path

from core.reading.report import SECTIONS, ReportRow, ReportSummary, screened_with, sections, totals

PAGE = (8.27, 11.69)  # A4 portrait, inches
FONT = 7.5  # points, Courier: every character is 0.6 em wide
LINE = FONT * 1.35 / (PAGE[1] * 72)  # one text line in figure units
TEXT_X, THUMB_X, THUMB_W = 0.16, 0.07, 0.07
WRAP = int((0.95 - TEXT_X) * PAGE[0] * 72 / (FONT * 0.6))  # characters per line that fit
SUMMARY_WRAP = int((0.95 - THUMB_X) * PAGE[0] * 72 / (FONT * 0.6))
TOP, BOTTOM = 0.92, 0.06
SUMMARY_LINE = FONT * 1.6 / (PAGE[1] * 72)  # one line of the summary in figure units
CHARTS = 0.17  # height of the matrix and ROC axes
HEADING = 0.028
# The PDF's core fonts (kept: the text stays searchable by simple tools) cover Windows-1252
# only; any other character is written as its code point, so two names never print alike
# (a name in Chinese was "??.jpeg" for every file). The CSV keeps every name as it is.
ESCAPE_NOTE = "Characters the PDF's fonts lack are shown as \\uXXXX; the CSV has every name as it is."


def pdf_text(text: str) -> str:
    """`text` with every character outside Windows-1252 written as \\uXXXX (\\UXXXXXXXX)."""
    out = []
    for char in str(text):
        try:
            char.encode("cp1252")
            out.append(char)
        except UnicodeEncodeError:
            code = ord(char)
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
    return "".join(out)


def entry_lines(r: ReportRow) -> list[str]:
    """The text of one file in the listing, escaped (pdf_text) and wrapped to the page's
    width (nothing cut)."""
    lines = []
    for part in _entry_text(r):
        lines.extend(textwrap.wrap(pdf_text(part), WRAP, break_long_words=True, break_on_hyphens=False) or [""])
    return lines


def _entry_text(r: ReportRow) -> list[str]:
    """The text of one file in the listing, as it is (one string a line before wrapping)."""
    parts = [f"{r.file}"]
    who = [f"patient {r.patient}" if r.patient else "", f"view {r.view}" if r.view else ""]
    if any(who):
        parts.append("   ".join(p for p in who if p))
    if r.status == "skipped":
        parts.append(f"Skipped: {r.reason}")
    elif r.status == "error":
        parts.append(f"Error: {r.reason}")
    elif r.status == "not screened":
        parts.append("Not screened")
    else:
        call = f"AI {r.prediction} (p={r.probability:.3f})"
        if r.status == "out of scope":
            call = f"Out of scope: {r.reason}; AI call withheld"
        elif r.screened_anyway:
            call += f" {r.screened_anyway}"
        parts.append(call + (f"   truth {r.truth}" if r.truth else ""))
    if r.decision:
        by = f" by {r.reader}" if r.reader else ""
        on = f" on AI {r.decision_ai_call}" if r.decision_ai_call else ""
        at = f" at {r.decided_at[:16].replace('T', ' ')} UTC" if r.decided_at else ""
        note = f" ({r.decision_note})" if r.decision_note else ""
        parts.append(f"Reader: {r.decision.replace('_', ' ')}{by}{on}{at}{note}")
    return parts


def _entry_height(r: ReportRow) -> float:
    text = len(entry_lines(r)) * LINE + 0.008
    return max(text, 0.062) if r.thumbnail is not None else text


def paginate(listing, first_top: float) -> list[list[tuple[str, ReportRow | None]]]:
    """Pages of (section, row) items; a row None is the section's heading (with a count)."""
    pages, page, y = [], [], first_top
    for title, rows in listing:
        items = [(title, None)] + [(title, r) for r in rows]
        for index, (section, row) in enumerate(items):
            needed = HEADING if row is None else _entry_height(row)
            if row is None and rows:  # keep a heading with its first entry
                needed += _entry_height(rows[0])
            if y - needed < BOTTOM and page:
                pages.append(page)
                page, y = [], TOP
                if row is not None:  # the section goes on: say so on the new page
                    page.append((section, None))
                    y -= HEADING
            page.append((section, row))
            y -= HEADING if row is None else _entry_height(row)
    pages.append(page)
    return pages


def write_pdf(rows: list[ReportRow], summary: ReportSummary, path) -> Path:
    import matplotlib
    from matplotlib.backends.backend_pdf import PdfPages

    # The PDF core fonts are not installed as files; matplotlib says so on every text.
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    counts = totals(rows)
    listing = sections(rows)
    truth_known = any(r.truth and r.status == "screened" for r in rows)
    made = screened_with(rows)
    lines = summary_lines(summary, counts, made)
    drawn = [summary.study, *_summary_text(summary, counts, made),
             *(part for r in rows for part in _entry_text(r))]
    if any(pdf_text(text) != text for text in drawn):  # the note only where something was escaped
        lines.append(ESCAPE_NOTE)
    text_end = 0.93 - len(lines) * SUMMARY_LINE
    charts_top = text_end - 0.04  # the charts' titles sit above their axes
    first_top = charts_top - CHARTS - 0.06 if truth_known else text_end - 0.03
    pages = paginate(listing, first_top=first_top)
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    # Uncompressed text streams: the report's words stay searchable by simple tools.
    with matplotlib.rc_context({"pdf.compression": 0, "pdf.use14corefonts": True}), PdfPages(tmp) as pdf:
        for number, items in enumerate(pages, start=1):
            fig = _new_page(summary, number, len(pages))
            top = TOP
            if number == 1:
                fig.text(0.07, 0.93, "\n".join(lines), fontsize=FONT, va="top", family="monospace",
                         linespacing=1.6)
                if truth_known:
                    _matrix_and_roc(fig, [r for r in rows if r.truth and r.status == "screened"],
                                    summary.threshold, charts_top - CHARTS)
                top = first_top
            _draw_items(fig, items, top, counts)
            pdf.savefig(fig)
        info = pdf.infodict()
        info["Title"] = f"PneumoScan reading report: {summary.study}"
        info["Subject"] = "Research use only. Not for diagnosis."
    tmp.replace(path)
    return path


def _new_page(summary: ReportSummary, number: int, total: int):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=PAGE)
    FigureCanvasAgg(fig)
    fig.text(0.07, 0.965, pdf_text(f"PneumoScan reading report: {summary.study}"), fontsize=12, weight="bold")
    fig.text(0.07, 0.95, "Research use only. Not for diagnosis.", fontsize=8, color="#b03a2e")
    fig.text(0.93, 0.025, f"Page {number} of {total}", fontsize=8, ha="right")
    return fig


def summary_lines(summary: ReportSummary, c: dict, made=()) -> list[str]:
    """The top of page 1: the study, the record, the totals (which add up) and how the
    results were made (`made`: screened_with(rows)), escaped and wrapped."""
    return [part for line in _summary_text(summary, c, made)
            for part in textwrap.wrap(pdf_text(line), SUMMARY_WRAP, subsequent_indent="  ")]


def _summary_text(summary: ReportSummary, c: dict, made=()) -> list[str]:
    lines = [
        f"Study: {summary.study}    Exported: {summary.exported_at}",
        f"Model: {summary.model}    Threshold: {summary.threshold:.3f}    Exported by: "
        f"{summary.reader or '(no reader set)'}    Decisions by: {', '.join(summary.readers) or '(none)'}",
        *summary.record,
        f"Files found: {c['files']} = {c['images']} images + {c['skipped']} skipped (not images)",
        f"Images: {c['images']} = {c['screened']} screened + {c['out_of_scope']} out of scope + "
        f"{c['errors']} errors + {c['not_screened']} not screened",
        f"AI positive: {c['ai_positive']}    AI negative: {c['ai_negative']}    Reader decisions: {c['decided']}"
        f"    Disagreed: {c['disagreed']}    Calls changed: {c['changed_calls']}",
        "Sections: " + "; ".join(f"{title.split(' (')[0].split(',')[0]} {c[title]}" for title in SECTIONS),
    ]
    if made:
        lines.append("Screened with: " + "; ".join(f"{how}: {n} images" for how, n in made))
    return lines


def _matrix_and_roc(fig, with_truth, threshold: float, bottom: float) -> None:
    import numpy as np
    from sklearn.metrics import confusion_matrix

    y_true = [1 if r.truth == "PNEUMONIA" else 0 for r in with_truth]
    y_call = [1 if r.prediction == "PNEUMONIA" else 0 for r in with_truth]
    matrix = confusion_matrix(y_true, y_call, labels=[1, 0])  # rows truth, cols AI; positive first
    ax = fig.add_axes([0.16, bottom, 0.28, CHARTS])
    ax.imshow(matrix, cmap="Blues")
    for (i, j), value in np.ndenumerate(matrix):
        ax.text(j, i, str(value), ha="center", va="center", fontsize=13,
                color="white" if value > matrix.max() / 2 else "black")
    ax.set_xticks([0, 1], ["AI pneumonia", "AI normal"], fontsize=8)
    ax.set_yticks([0, 1], ["Truth\npneumonia", "Truth\nnormal"], fontsize=8)
    tp, fn, fp, tn = matrix[0, 0], matrix[0, 1], matrix[1, 0], matrix[1, 1]
    sens = f"{tp / (tp + fn):.1%}" if tp + fn else "n/a"
    spec = f"{tn / (tn + fp):.1%}" if tn + fp else "n/a"
    ax.set_title(f"In-scope images: sensitivity {sens}, specificity {spec}", fontsize=8)
    if len(set(y_true)) == 2:
        from sklearn.metrics import roc_auc_score, roc_curve

        scores = [r.probability for r in with_truth]
        fpr, tpr, _ = roc_curve(y_true, scores)
        ax = fig.add_axes([0.6, bottom, 0.3, CHARTS])
        ax.plot(fpr, tpr, color="#1f618d", label=f"AUC {roc_auc_score(y_true, scores):.3f}")
        ax.plot([0, 1], [0, 1], color="#bbb", linestyle="--", linewidth=0.8)
        ax.plot([fp / (fp + tn) if fp + tn else 0], [tp / (tp + fn) if tp + fn else 0], "o", color="#b03a2e",
                label=f"threshold {threshold:.2f}")
        ax.set_xlabel("False positive rate", fontsize=8)
        ax.set_ylabel("True positive rate", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_title("ROC curve", fontsize=8)
        ax.legend(loc="lower right", fontsize=7)


def _draw_items(fig, items, top: float, counts: dict) -> None:
    y = top
    for title, row in items:
        if row is None:
            fig.text(0.07, y, f"{title} ({counts[title]})", fontsize=10, weight="bold", va="top")
            y -= HEADING
            continue
        height = _entry_height(row)
        if row.thumbnail is not None:
            ax = fig.add_axes([THUMB_X, y - 0.052, THUMB_W, 0.05])
            ax.imshow(row.thumbnail, cmap="gray", vmin=0, vmax=255)
            ax.set_axis_off()
        fig.text(TEXT_X, y, "\n".join(entry_lines(row)), fontsize=FONT, va="top", family="monospace",
                 linespacing=1.35)
        y -= height
