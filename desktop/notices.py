"""Message boxes of the main window: never modal loops (open(), not exec())."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QInputDialog, QMessageBox

from desktop.status_panel import RESEARCH_NOTICE

ABOUT_TEXT = (
    "<h3>PneumoScan</h3><p>Screens chest X-rays for pneumonia with a convolutional network and shows "
    "Grad-CAM heatmaps of the evidence it used.</p>"
    f"<p><b>{RESEARCH_NOTICE}.</b> PneumoScan is not a medical device; every AI call "
    "must be read by a qualified radiologist.</p>")
FIRST_RUN_TEXT = (
    f"<p><b>{RESEARCH_NOTICE}.</b></p><p>PneumoScan is a research tool, not a medical device. Its AI calls "
    "and heatmaps are aids for a qualified reader and must never be used on their own for a diagnosis.</p>")


def message_box(parent, title: str, text: str, icon=QMessageBox.Icon.Warning) -> QMessageBox:
    box = QMessageBox(icon, title, text, QMessageBox.StandardButton.Ok, parent)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box


def first_run_notice(window) -> QMessageBox | None:
    """The once-per-user research-use notice (never for quiet windows: tests and smoke runs)."""
    if not window.settings.research_notice_due(suppressed=window.quiet):
        return None
    box = message_box(window, "PneumoScan: research use only", FIRST_RUN_TEXT, QMessageBox.Icon.Information)
    window.settings.mark_research_notice_seen()
    return box


def ask_reader_name(window) -> None:
    """Non-modal: the name is applied when the reader presses OK."""
    dialog = QInputDialog(window)
    dialog.setWindowTitle("Reader name")
    dialog.setLabelText("Your name as the reader (recorded with decisions and sign-offs):")
    dialog.setTextValue(window.settings.reader_name)
    dialog.textValueSelected.connect(window.set_reader_name)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.open()
