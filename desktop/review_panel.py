"""The right-hand pane: confusion matrix and queues, the study's sign-off, and the details.

It scrolls vertically only: every text wraps to the pane's width instead of
being clipped or forcing a horizontal scroll bar.
"""
from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import QFrame, QGroupBox, QLabel, QPushButton, QScrollArea, QVBoxLayout, QWidget

from desktop.confusion_widget import ConfusionMatrixWidget
from desktop.details_panel import DetailsPanel
from desktop.text import wrapping


class SignOffBox(QGroupBox):
    """The study's sign-off: who signed it with what, its amendments, and the one button
    (Sign off / Amend). A signed-off study is read-only until amended."""
    sign_off_requested = Signal()
    amend_requested = Signal()

    def __init__(self, parent=None):
        super().__init__("Sign-off", parent)
        self.state = QLabel("Not signed off", self)
        self.state.setObjectName("signOffState")
        wrapping(self.state)
        self.button = QPushButton("Sign off study", self)
        self.button.setObjectName("signOffButton")
        self.button.clicked.connect(self._clicked)
        layout = QVBoxLayout(self)
        layout.addWidget(self.state)
        layout.addWidget(self.button)
        self._signed = False

    def _clicked(self) -> None:
        (self.amend_requested if self._signed else self.sign_off_requested).emit()

    def show_sign_off(self, sign_off, reader: str, amendments=()) -> None:
        self._signed = sign_off is not None
        history = [a.text() for a in amendments]
        if sign_off is None:
            who = reader or "no reader set (Settings > Reader name)"
            self.state.setText("\n".join([f"Open. Reader: {who}", *history]))
            self.button.setText("Sign off study")
            self.button.setToolTip("Asks about what is still undecided, then records the sign-off")
        else:
            self.state.setText("\n".join([*history, sign_off.text(), "Read-only: choose Amend to change it"]))
            self.button.setText("Amend…")
            self.button.setToolTip("Re-open the study for changes (recorded with your name and a reason)")


class _Page(QWidget):
    """Never shorter than its wrapped text needs at its current width (QScrollArea would squeeze it)."""

    def minimumSizeHint(self) -> QSize:
        hint = super().minimumSizeHint()
        layout = self.layout()
        if layout is not None and layout.hasHeightForWidth() and self.width() > 0:
            return QSize(hint.width(), max(hint.height(), layout.totalHeightForWidth(self.width())))
        return hint

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if event.oldSize().width() != event.size().width():
            self.updateGeometry()


class ReviewPanel(QScrollArea):
    def __init__(self, parent=None):
        super().__init__(parent)
        inner = _Page(self)
        self.confusion = ConfusionMatrixWidget(inner)
        self.sign_off = SignOffBox(inner)
        self.details = DetailsPanel(inner)
        layout = QVBoxLayout(inner)
        layout.setContentsMargins(0, 0, 4, 0)
        layout.addWidget(self.confusion)
        layout.addWidget(self.sign_off)
        layout.addWidget(self.details, 1)
        self.setWidget(inner)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setMinimumWidth(260)
