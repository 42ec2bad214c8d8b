"""CSV and PDF export from the main window: snapshot on the GUI thread, write on a worker."""
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
    from desktop.export import ExportSummary, now_text, snapshot_rows, write_csv, write_pdf

    session = window.session
    rows = snapshot_rows(session, thumbnails=lambda key: qimage_to_array(window.results_model.thumbnail(key))
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
    on_error = lambda message: window.notify("Export failed", message)  # noqa: E731
    if kind == "csv":
        run_in_pool(lambda: write_csv(rows, path), on_done=window._exported_to, on_error=on_error)
        return
    entry = window.current_entry
    sign_off = session.signed_off
    summary = ExportSummary(
        study=window.study_folder.name if window.study_folder else "study",
        model=entry.card.label if entry else (rows[0].model or "-"), threshold=session.threshold,
        exported_at=now_text(), reader=session.reader,
        signed_off=f"by {sign_off.reader} at {sign_off.time[:16].replace('T', ' ')} UTC" if sign_off else "")
    window.statusBar().showMessage("Writing the PDF report…")
    run_in_pool(lambda: write_pdf(rows, summary, path), on_done=window._exported_to, on_error=on_error)
