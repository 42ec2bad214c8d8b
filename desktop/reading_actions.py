"""The reader's record-changing actions of the main window: decisions, confirm out of
scope, screen anyway, undo, sign-off and amend, and the read-only rule for screening
again. Each says why when it refuses; sign-off and amend ask first.

`ask` and `ask_reason` are the only dialogs (tests replace them); the session
(core.reading.session) decides what is allowed.
"""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QInputDialog, QMessageBox

from core.reading.records import SCREEN_ANYWAY

MESSAGE_MS = 6000


def ask(window, title: str, text: str, on_answer) -> None:
    """Yes/No without a modal loop (open(), as desktop.notices): `on_answer(bool)` when the
    reader answers. A quiet window (smoke test) answers No: nothing is signed without a person."""
    window.messages.append(f"{title}: {text}")
    if window.quiet:
        on_answer(False)
        return
    box = QMessageBox(QMessageBox.Icon.Question, title, text,
                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, window)
    box.setDefaultButton(QMessageBox.StandardButton.No)
    box.finished.connect(lambda _result: on_answer(box.clickedButton() is box.button(QMessageBox.StandardButton.Yes)))
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()


def ask_reason(window, title: str, text: str, on_reason) -> None:
    """A line of text without a modal loop: `on_reason(text)` on OK (a quiet window cancels)."""
    window.messages.append(f"{title}: {text}")
    if window.quiet:
        return
    dialog = QInputDialog(window)
    dialog.setWindowTitle(title)
    dialog.setLabelText(text)
    dialog.textValueSelected.connect(on_reason)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.open()


def _say(window, text: str) -> None:
    window.statusBar().showMessage(text, MESSAGE_MS)


def decide(window, kind: str) -> None:
    """A decision on the current image (review only), then the next image."""
    session = window.session
    if session.queue_kind is None:
        _say(window, "Open a queue (a matrix cell or Needs review) to record decisions")
        return
    problem = session.decide(kind)
    if problem:
        _say(window, f"Not recorded: {problem}")


def confirm_out_of_scope(window) -> None:
    problem = window.session.confirm_out_of_scope()
    _say(window, f"Not recorded: {problem}" if problem else "Confirmed out of scope")


def screen_anyway(window) -> None:
    """The AI call for the current out-of-scope image, recorded as such (undo takes it back)."""
    problem = window.session.decide(SCREEN_ANYWAY)
    _say(window, f"Cannot screen anyway: {problem}" if problem else "Screened anyway: now decide on the call shown")
    if problem is None:
        window._on_cursor(window.session.current)  # the heatmap default follows the call now shown


def undo(window) -> None:
    session = window.session
    problem = session.undo_refusal()
    if problem is not None:
        _say(window, "Nothing to undo" if problem == "nothing to undo" else f"Cannot undo: {problem}")
        return
    session.undo()
    _say(window, "Decision undone")


def refuse_screening(window, use_stored: bool) -> bool:
    """Screen again on a signed-off study is refused (it would change what was signed)."""
    reason = window.session.read_only_reason
    if reason and not use_stored:
        window.notify("Cannot screen again", reason)
        return True
    return False


def toggle_sign_off(window) -> None:
    """Sign off (asking about what is still undecided), or amend a signed-off study (asking why)."""
    session = window.session
    if session.signed_off is not None:
        ask_reason(window, "Amend the signed-off study",
                   f"{session.signed_off.text()}.\nWhy is it amended? (recorded with your name)",
                   lambda reason: _amend(window, reason))
        return
    counts = session.counts()
    if counts["unscreened"] or not session.reader.strip() or session.folder is None:
        problem = session.sign_off()  # refuses, saying why
        if problem:
            window.notify("Cannot sign off", problem)
        return
    open_items = session.sign_off_questions()
    text = (f"Sign off {counts['total']} images at threshold {session.threshold:.3f} with "
            f"{session.model_label or 'this model'} as {session.reader}?")
    if open_items:
        text = "Still open:\n- " + "\n- ".join(open_items) + "\n\n" + text
    folder = session.folder
    ask(window, "Sign off study", text, lambda yes: _sign_off(window, folder, yes))


def _sign_off(window, folder, yes: bool) -> None:
    if not yes or window.session.folder != folder:  # declined, or another study opened meanwhile
        _say(window, "Not signed off")
        return
    problem = window.session.sign_off()
    if problem:
        window.notify("Cannot sign off", problem)


def _amend(window, reason: str) -> None:
    problem = window.session.amend(reason)
    if problem:
        window.notify("Cannot amend", problem)
