"""CSV and PDF export from the main window: the report is built by core.reading.report
(the same code as `pneumoscan-cli report`); a snapshot is taken on the GUI thread and
a worker writes the files."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QFileDialog

from desktop.workers import run_in_pool


def qimage_to_array(image: QImage | None) -> np.ndarray | None:
    """A grey thumbnail as uint8 (rows, cols), a copy safe to hand to a worker."""
    if image is None or image.isNull():
        return None
    grey = image.convertToFormat(QImage.Format.Format_Grayscale8)
    rows, cols, stride = grey.height(), grey.width(), grey.bytesPerLine()
    data = np.frombuffer(grey.constBits(), dtype=np.uint8, count=rows * stride).reshape(rows, stride)
    return data[:, :cols].copy()


def export(window, kind: str, path: str | None = None) -> None:
    from core.reading.report import report_rows, summary_of, write_csv
    from core.reading.report_pdf import write_pdf

    session = window.session
    skipped = window.study.skipped if window.study is not None else []
    rows = report_rows(session, skipped, thumbnails=lambda key: qimage_to_array(window.results_model.thumbnail(key))
                       if kind == "pdf" else None)
    if not rows:
        window.notify("Nothing to export", "Open a study first.")
        return
    if path is None:
        folder = window.study_folder or Path.home()
        title, pattern = (("Export results as CSV", "CSV files (*.csv)") if kind == "csv"
                          else ("Export PDF report", "PDF files (*.pdf)"))
        path, _ = QFileDialog.getSaveFileName(window, title, str(folder / f"{folder.name}_pneumoscan.{kind}"), pattern)
        if not path:
            return
    entry = window.current_entry
    summary = summary_of(session, window.study_folder.name if window.study_folder else "study",
                         entry.card.label if entry else (session.model_label or "-"))
    on_error = lambda message: window.notify("Export failed", message)  # noqa: E731
    if kind == "csv":
        run_in_pool(lambda: write_csv(rows, path, summary), on_done=window._exported_to, on_error=on_error)
        return
    window.statusBar().showMessage("Writing the PDF report…")
    run_in_pool(lambda: write_pdf(rows, summary, path), on_done=window._exported_to, on_error=on_error)
