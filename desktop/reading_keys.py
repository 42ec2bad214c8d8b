"""The reading keys, and the rule for when decision keys act.

Navigation (Right/Space, Left), H (heatmap), I (invert) and 1-5 (window
presets) act while the viewer or the table has the focus. Decision keys
(A agree, D disagree, U unsure, Ctrl+Z undo) act only in review: a queue is
open AND the viewer or the table (which then lists the queue) has the focus.
Anywhere else a letter is just a letter: typing into a dialog or a field can
never record a decision. `cue_changed` drives the visible cue.
"""
from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtWidgets import QApplication

from core.screening.results import AGREE, DISAGREE, UNSURE

DECISION_KEYS = {Qt.Key.Key_A: AGREE, Qt.Key.Key_D: DISAGREE, Qt.Key.Key_U: UNSURE}
PRESET_KEYS = {Qt.Key.Key_1: 0, Qt.Key.Key_2: 1, Qt.Key.Key_3: 2, Qt.Key.Key_4: 3, Qt.Key.Key_5: 4}

# (keys, what they do) for the F1 sheet and the Review menu.
SHORTCUTS = (
    ("Right / Space", "Next image (in the open queue, else in the table)"),
    ("Left", "Previous image"),
    ("A", "Agree with the AI call (review only)"),
    ("D", "Disagree with the AI call (review only)"),
    ("U", "Unsure (review only)"),
    ("Ctrl+Z", "Undo the last decision (review only)"),
    ("H", "Heatmap on/off (faint on images the AI calls normal)"),
    ("I", "Invert greyscale"),
    ("1-5", "Window presets: file default, auto, lung, soft tissue, bone"),
    ("Right-drag", "Window/level; right double-click resets"),
    ("Wheel / drag", "Zoom / pan; double-click fits"),
    ("F6 / Shift+F6", "Next / previous pane: table, viewer, review, toolbar"),
    ("Esc", "Close the review queue"),
    ("Ctrl+O", "Open a study folder"),
    ("F1", "This sheet"),
)


class ReadingKeys(QObject):
    cue_changed = Signal(bool)  # decision keys active?

    def __init__(self, window, targets):
        super().__init__(window)
        self._window = window
        self._targets = list(targets)
        self._active = False
        for widget in self._targets:
            widget.installEventFilter(self)
        app = QApplication.instance()
        if app is not None:
            app.focusChanged.connect(self._on_focus_changed)

    def _focus_in_targets(self) -> bool:
        focus = QApplication.focusWidget()
        while focus is not None:
            if focus in self._targets:
                return True
            focus = focus.parentWidget()
        return False

    @property
    def decisions_active(self) -> bool:
        return self._window.session.queue_kind is not None and self._focus_in_targets()

    def update_cue(self) -> None:
        active = self.decisions_active
        if active != self._active:
            self._active = active
        self.cue_changed.emit(active)

    def _on_focus_changed(self, _old, _new) -> None:
        try:
            self.update_cue()
        except RuntimeError:  # the window is being destroyed
            pass

    def eventFilter(self, obj, event) -> bool:
        if event.type() != QEvent.Type.KeyPress:
            return False
        action = self.action_for(event.key(), event.modifiers())
        if action is None:
            return False
        action()
        return True

    def action_for(self, key, modifiers):
        """The action bound to a key press on the viewer or the table, or None."""
        w = self._window
        if modifiers & Qt.KeyboardModifier.ControlModifier:
            if key != Qt.Key.Key_Z:
                return None
            if self.decisions_active or not w.session.can_undo:
                return w.undo_decision  # says "Nothing to undo" (or why not) when it cannot
            return lambda: w.statusBar().showMessage("Undo works in review: open a queue first", 5000)
        if key in DECISION_KEYS:
            if not self.decisions_active:
                return lambda: w.statusBar().showMessage(
                    "Decision keys work in review: open a queue (a matrix cell or Needs review) first", 5000)
            return lambda: w.decide(DECISION_KEYS[key])
        if key in PRESET_KEYS:
            return lambda: w.viewer.apply_preset(PRESET_KEYS[key])
        return {
            Qt.Key.Key_Right: w.next_image, Qt.Key.Key_Space: w.next_image, Qt.Key.Key_Left: w.previous_image,
            Qt.Key.Key_H: w.viewer.toggle_heatmap, Qt.Key.Key_I: w.viewer.toggle_invert,
        }.get(key)
