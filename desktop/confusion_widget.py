"""Clickable 2x2 confusion matrix (truth x AI call) plus the needs-review entry.

Each cell opens its review queue; the counts follow the current threshold.
"""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QGridLayout, QGroupBox, QLabel, QPushButton, QVBoxLayout

from desktop.review_queue import (CELL_NAMES, FALSE_NEGATIVE, FALSE_POSITIVE, NEEDS_REVIEW,
                                  TRUE_NEGATIVE, TRUE_POSITIVE)

# (row, column) of each cell: truth down the side, AI call across the top.
_CELL_POSITIONS = {TRUE_POSITIVE: (1, 1), FALSE_NEGATIVE: (1, 2),
                   FALSE_POSITIVE: (2, 1), TRUE_NEGATIVE: (2, 2)}


def _rate(numerator: int, denominator: int) -> str:
    return f"{numerator / denominator:.1%}" if denominator else "n/a"


class ConfusionMatrixWidget(QGroupBox):
    queue_requested = Signal(str)  # a cell name or NEEDS_REVIEW

    def __init__(self, parent=None):
        super().__init__("Review", parent)
        self.cell_buttons: dict[str, QPushButton] = {}
        grid = QGridLayout()
        grid.addWidget(QLabel("<b>AI: pneumonia</b>"), 0, 1, Qt.AlignmentFlag.AlignCenter)
        grid.addWidget(QLabel("<b>AI: normal</b>"), 0, 2, Qt.AlignmentFlag.AlignCenter)
        grid.addWidget(QLabel("<b>Truth: pneumonia</b>"), 1, 0)
        grid.addWidget(QLabel("<b>Truth: normal</b>"), 2, 0)
        for cell, (row, col) in _CELL_POSITIONS.items():
            button = QPushButton(self)
            button.setObjectName(f"cell_{cell}")
            button.setProperty("mistake", cell in (FALSE_NEGATIVE, FALSE_POSITIVE))
            button.setToolTip(f"Review the {CELL_NAMES[cell].lower()}")
            button.setMinimumHeight(44)
            button.clicked.connect(lambda _=False, c=cell: self.queue_requested.emit(c))
            grid.addWidget(button, row, col)
            self.cell_buttons[cell] = button
        self.grid_labels = [grid.itemAt(i).widget() for i in range(grid.count())
                            if isinstance(grid.itemAt(i).widget(), QLabel)]
        self._grid = grid

        self.rates_label = QLabel(self)
        self.truth_note = QLabel("Truth unknown for this study (no NORMAL / PNEUMONIA "
                                 "sub-folders or labels.csv): review AI positives and "
                                 "uncertain calls.", self)
        self.truth_note.setWordWrap(True)
        self.review_button = QPushButton(self)
        self.review_button.setObjectName("needsReviewButton")
        self.review_button.clicked.connect(lambda: self.queue_requested.emit(NEEDS_REVIEW))

        layout = QVBoxLayout(self)
        layout.addLayout(grid)
        layout.addWidget(self.rates_label)
        layout.addWidget(self.truth_note)
        layout.addWidget(self.review_button)
        self.counts: dict[str, int] = dict.fromkeys(CELL_NAMES, 0)
        self.set_counts(self.counts, truth_known=False, needs_review=0)

    def set_counts(self, counts: dict[str, int], truth_known: bool, needs_review: int) -> None:
        self.counts = dict(counts)
        for cell, button in self.cell_buttons.items():
            button.setText(f"{CELL_NAMES[cell]}\n{counts.get(cell, 0)}")
            button.setVisible(truth_known)
        for label in self.grid_labels:
            label.setVisible(truth_known)
        self.truth_note.setVisible(not truth_known)
        tp, fn = counts.get(TRUE_POSITIVE, 0), counts.get(FALSE_NEGATIVE, 0)
        tn, fp = counts.get(TRUE_NEGATIVE, 0), counts.get(FALSE_POSITIVE, 0)
        self.rates_label.setText(f"Sensitivity {_rate(tp, tp + fn)}   Specificity {_rate(tn, tn + fp)}")
        self.rates_label.setVisible(truth_known)
        self.review_button.setText(f"Needs review ({needs_review})")
