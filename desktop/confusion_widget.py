"""Clickable 2x2 confusion matrix (truth x AI call) plus the needs-review entry.

Each cell opens its review queue; the counts follow the current threshold.
"""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QGridLayout, QGroupBox, QLabel, QPushButton, QSizePolicy, QVBoxLayout

from core.reading.cells import (CELL_NAMES, FALSE_NEGATIVE, FALSE_POSITIVE, NEEDS_REVIEW, TRUE_NEGATIVE,
                         TRUE_POSITIVE)
from core.reading.session import OUT_OF_SCOPE_QUEUE
from desktop.text import wrapping

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
        # Two-line headers ("AI:" over "pneumonia"): narrow enough for a 1280 px window, and
        # the grid always gives them their full width (a wrapping label could be squeezed).
        for text, row, col in (("AI: pneumonia", 0, 1), ("AI: normal", 0, 2),
                               ("Truth: pneumonia", 1, 0), ("Truth: normal", 2, 0)):
            label = QLabel("<b>" + text.replace(": ", ":<br>") + "</b>", self)
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            label.setObjectName("matrixHeader")
            label.setSizePolicy(QSizePolicy.Policy.Minimum, QSizePolicy.Policy.Minimum)
            grid.addWidget(label, row, col)
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(2, 1)
        for cell, (row, col) in _CELL_POSITIONS.items():
            button = QPushButton(self)
            button.setObjectName(f"cell_{cell}")
            button.setProperty("mistake", cell in (FALSE_NEGATIVE, FALSE_POSITIVE))
            button.setToolTip(f"Review the {CELL_NAMES[cell].lower()}")
            button.setMinimumHeight(58)
            button.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
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
        wrapping(self.truth_note)
        wrapping(self.rates_label)
        self.unscreened_note = QLabel(self)
        self.unscreened_note.setObjectName("unscreenedNote")
        wrapping(self.unscreened_note)
        self.review_button = QPushButton(self)
        self.review_button.setObjectName("needsReviewButton")
        self.review_button.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.review_button.clicked.connect(lambda: self.queue_requested.emit(NEEDS_REVIEW))
        self.scope_button = QPushButton(self)
        self.scope_button.setObjectName("outOfScopeButton")
        self.scope_button.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.scope_button.setToolTip("Images outside what the model knows (not a chest X-ray, lateral view, ...)")
        self.scope_button.clicked.connect(lambda: self.queue_requested.emit(OUT_OF_SCOPE_QUEUE))

        layout = QVBoxLayout(self)
        layout.addLayout(grid)
        layout.addWidget(self.rates_label)
        layout.addWidget(self.truth_note)
        layout.addWidget(self.unscreened_note)
        layout.addWidget(self.review_button)
        layout.addWidget(self.scope_button)
        self.counts: dict[str, int] = dict.fromkeys(CELL_NAMES, 0)
        self.set_counts(self.counts, truth_known=False, needs_review=0)

    def set_counts(self, counts: dict[str, int], truth_known: bool, needs_review: int,
                   needs_review_left: int | None = None, unscreened: int = 0, out_of_scope: int = 0) -> None:
        """Counts at the current threshold; images not screened (yet, or after a cancel) are said so."""
        self.counts = dict(counts)
        for cell, button in self.cell_buttons.items():
            first, rest = CELL_NAMES[cell].split(" ", 1)  # "False" over "negatives": fits a narrow pane
            button.setText(f"{first}\n{rest}\n{counts.get(cell, 0)}")
            button.setVisible(truth_known)
        for label in self.grid_labels:
            label.setVisible(truth_known)
        self.truth_note.setVisible(not truth_known)
        tp, fn = counts.get(TRUE_POSITIVE, 0), counts.get(FALSE_NEGATIVE, 0)
        tn, fp = counts.get(TRUE_NEGATIVE, 0), counts.get(FALSE_POSITIVE, 0)
        self.rates_label.setText(f"Sensitivity {_rate(tp, tp + fn)}   Specificity {_rate(tn, tn + fp)}")
        self.rates_label.setVisible(truth_known)
        left = needs_review if needs_review_left is None else needs_review_left
        self.review_button.setText(f"Needs review: {left} of {needs_review} left")
        self.unscreened_note.setText(f"{unscreened} images not screened: counts cover screened images only."
                                     if unscreened else "")
        self.unscreened_note.setVisible(bool(unscreened))
        self.scope_button.setText(f"Out of scope ({out_of_scope})")
        self.scope_button.setVisible(bool(out_of_scope))
