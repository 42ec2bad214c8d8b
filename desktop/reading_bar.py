"""The bar above the viewer: where the reader is in the queue, the decision buttons,
and the cue that says whether the decision keys are live."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from core.screening.results import AGREE, DISAGREE, UNSURE
from desktop.text import wrapping

CUE_ON = "Decision keys on: A agree, D disagree, U unsure, Ctrl+Z undo"
CUE_OFF = "Decision keys off: open a queue (a matrix cell or Needs review), then click the image"
CUE_OFF_IN_QUEUE = "Decision keys off: click the image or the table to use them"
CUE_LOCKED = "Decision keys locked: the study is signed off (Sign-off > Amend… to change it)"


class ReadingBar(QWidget):
    previous_requested = Signal()
    next_requested = Signal()
    decision_requested = Signal(str)
    close_queue_requested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.queue_label = QLabel("No queue open", self)
        self.queue_label.setObjectName("queueLabel")
        wrapping(self.queue_label)  # long queue names wrap, never clip or widen the window
        self.cue = QLabel(CUE_OFF, self)
        self.cue.setObjectName("keyCue")
        wrapping(self.cue)
        self.buttons: dict[str, QPushButton] = {}
        self._in_review = self._cue_active = self._locked = False
        self._tips = {AGREE: "The AI call is right", DISAGREE: "The AI call is wrong",
                      UNSURE: "Cannot tell from this image"}
        row = QHBoxLayout()
        for name, text, tip, slot in (
                ("previous", "◀", "Previous (Left)", self.previous_requested.emit),
                (AGREE, "Agree (A)", "The AI call is right", lambda: self.decision_requested.emit(AGREE)),
                (DISAGREE, "Disagree (D)", "The AI call is wrong", lambda: self.decision_requested.emit(DISAGREE)),
                (UNSURE, "Unsure (U)", "Cannot tell from this image", lambda: self.decision_requested.emit(UNSURE)),
                ("next", "▶", "Next (Right or Space)", self.next_requested.emit),
                ("close", "Close queue", "Back to the whole study (Esc)", self.close_queue_requested.emit)):
            button = QPushButton(text, self)
            button.setToolTip(tip)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys stay with the viewer
            button.clicked.connect(slot)
            row.addWidget(button)
            self.buttons[name] = button
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.queue_label)
        layout.addLayout(row)
        layout.addWidget(self.cue)
        self.set_review(False)
        self.set_cue(False)

    def set_queue_text(self, text: str) -> None:
        self.queue_label.setText(text)

    def set_review(self, in_review: bool) -> None:
        """Decision buttons only in review (a queue is open)."""
        self._in_review = in_review
        for name in (AGREE, DISAGREE, UNSURE, "close"):
            self.buttons[name].setEnabled(in_review)
        self._show_cue()

    def show_state(self, session) -> None:
        """Each decision button enabled only when the session would take it, its tooltip saying why not
        (an out-of-scope image whose call is withheld, a signed-off study, no AI result)."""
        in_review = session.queue_kind is not None
        self._locked = session.read_only_reason is not None
        self.set_review(in_review)
        for kind in (AGREE, DISAGREE, UNSURE):
            problem = session.refusal(kind) if in_review else "open a queue first"
            button = self.buttons[kind]
            button.setEnabled(problem is None)
            button.setToolTip(self._tips[kind] if problem is None else f"Not now: {problem}")
        self.buttons["close"].setEnabled(in_review)

    def set_cue(self, active: bool) -> None:
        self._cue_active = active
        self._show_cue()

    def _show_cue(self) -> None:
        if self._locked and self._in_review:
            text = CUE_LOCKED
        else:
            text = CUE_ON if self._cue_active else (CUE_OFF_IN_QUEUE if self._in_review else CUE_OFF)
        self.cue.setText(text)
        live = self._cue_active and not self._locked
        self.cue.setProperty("active", live)
        self.cue.setStyleSheet("background:#1e8449;color:white;padding:2px;" if live
                               else "background:#d5d8dc;color:#2c3e50;padding:2px;")
