"""Labels that wrap instead of clipping, and names that may break at / _ -."""
from __future__ import annotations

from PySide6.QtWidgets import QLabel, QSizePolicy

ZERO_WIDTH_SPACE = "\u200b"


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
