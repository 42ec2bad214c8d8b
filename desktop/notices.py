"""Message boxes of the main window: never modal loops (open(), not exec())."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QInputDialog, QMessageBox, QProgressDialog

from desktop.status_panel import RESEARCH_NOTICE

ABOUT_TEXT = (
    "<h3>PneumoScan</h3><p>Screens chest X-rays for pneumonia with a convolutional network and shows "
    "Grad-CAM heatmaps of the evidence it used.</p>"
    f"<p><b>{RESEARCH_NOTICE}.</b> PneumoScan is not a medical device; every AI call "
    "must be read by a qualified radiologist.</p>")
FIRST_RUN_TEXT = (
    f"<p><b>{RESEARCH_NOTICE}.</b></p><p>PneumoScan is a research tool, not a medical device. Its AI calls "
    "and heatmaps are aids for a qualified reader and must never be used on their own for a diagnosis.</p>")


def about_text(entry) -> str:
    """The research-use notice, then what the current model is for and its known limits."""
    from core.models.notes import about_model_html

    return ABOUT_TEXT + about_model_html(entry.card if entry is not None else None)


def show_about(window, entry) -> QMessageBox:
    return message_box(window, "About PneumoScan", about_text(entry), QMessageBox.Icon.Information)


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


def saving_before_close(window, store, on_saved, on_give_up) -> QProgressDialog:
    """Closing with decisions not written yet: wait for them, visibly. `on_saved()` once the
    store has written them all; `on_give_up()` only if the reader chooses to quit without them."""
    dialog = QProgressDialog(window)
    dialog.setWindowTitle("Saving decisions")
    dialog.setCancelButtonText("Quit without saving them")
    dialog.setRange(0, 0)  # busy: the count is in the text
    dialog.setMinimumDuration(0)
    dialog.setAutoClose(False)
    dialog.setAutoReset(False)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)

    def show_count(count: int, error: str = "") -> None:
        text = f"Saving {count} decision{'s' if count != 1 else ''} before closing…"
        if store.failing:
            text += f"\nThe results store refuses the write ({error or 'see the log'}); retrying."
        dialog.setLabelText(text)

    def finished() -> None:
        for signal, slot in connections:
            signal.disconnect(slot)
        dialog.close()

    def saved() -> None:
        if not store.unsaved:
            finished()
            on_saved()

    def give_up() -> None:
        finished()
        on_give_up()

    connections = [(store.unsaved_changed, show_count), (store.write_failed, lambda e: show_count(store.unsaved, e)),
                   (store.drained, saved), (dialog.canceled, give_up)]
    for signal, slot in connections:
        signal.connect(slot)
    show_count(store.unsaved)
    dialog.open()
    store.retry_now()
    return dialog
