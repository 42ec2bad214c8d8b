"""Labels that wrap instead of clipping, warning lines, and names that may break at / _ -."""
from __future__ import annotations

from PySide6.QtWidgets import QLabel, QSizePolicy

ZERO_WIDTH_SPACE = "\u200b"
WARNING_STYLE = "color: #b00020;"


def wrapping(label: QLabel) -> QLabel:
    """Word-wrapped, any width, height from the text (the height-for-width flag must be kept)."""
    label.setWordWrap(True)
    policy = QSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    policy.setHeightForWidth(True)
    label.setSizePolicy(policy)
    return label


def breakable(text: str) -> str:
    """A file name or UID that may wrap after / _ - . (zero-width spaces; the text reads the same)."""
    for mark in "/_-.":
        text = text.replace(mark, mark + ZERO_WIDTH_SPACE)
    return text


def note_label(parent, name: str = "", warning: bool = False) -> QLabel:
    """A word-wrapped status line (`warning`: in the warning colour); `name` is its object name."""
    label = QLabel(parent)
    if name:
        label.setObjectName(name)
    label.setWordWrap(True)
    if warning:
        label.setStyleSheet(WARNING_STYLE)
    return label
