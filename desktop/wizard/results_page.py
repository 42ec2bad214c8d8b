"""Wizard page 4: the new model beside the current one, a threshold, and saving.

Both models are judged on the new model's validation split (patients the new
model never trained on). The current model is run over the same files on a
worker, through the screening code, at its own input size and threshold.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QHBoxLayout, QHeaderView, QLabel, QLineEdit, QPushButton, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWizardPage)

from core.metrics import roc_points
from desktop.threshold_control import ThresholdControl
from desktop.training_worker import start_job
from desktop.wizard.comparison import metrics_at, name_problem, save_new_model, score_model
from desktop.wizard.plots import CURRENT_COLOR, NEW_COLOR, ComparisonFigure

def _percent(value) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _number(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


class ResultsPage(QWizardPage):
    saved = Signal(object, bool)  # ModelEntry, make active

    ROWS = ("Threshold", "Sensitivity", "Specificity", "AUROC", "Validation images")

    def __init__(self, current_model=None, parent=None):
        super().__init__(parent)
        self.setTitle("Results")
        self.setSubTitle("Both models on the new model's validation split. Pick the threshold, "
                         "name the model and save it.")
        self.current_model = current_model  # ModelEntry or None
        self.outcome = None
        self.current_probs: np.ndarray | None = None
        self.current_note = ""
        self.saved_entry = None
        self.job = None  # scoring the current model
        self.save_job = None

        # Full range and 4 decimals: a model's operating point is picked here.
        self.picker = ThresholdControl(0.5, self, decimals=4, minimum=0.0, maximum=1.0)
        self.picker.threshold_changed.connect(lambda _v: self.refresh())
        self.table = QTableWidget(len(self.ROWS), 2, self)
        self.table.setVerticalHeaderLabels(list(self.ROWS))
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.setSizeAdjustPolicy(QTableWidget.SizeAdjustPolicy.AdjustToContents)
        self.figure = ComparisonFigure(self)
        self.figure.setMinimumHeight(220)
        self.compare_label = QLabel(self)
        self.compare_label.setWordWrap(True)
        self.name_edit = QLineEdit(self)
        self.name_edit.textChanged.connect(lambda _t: self._update_name())
        self.version_label = QLabel(self)
        self.save_button = QPushButton("Save", self)
        self.save_active_button = QPushButton("Save and make active", self)
        self.save_button.clicked.connect(lambda: self.save(activate=False))
        self.save_active_button.clicked.connect(lambda: self.save(activate=True))
        self.save_label = QLabel(self)
        self.save_label.setObjectName("saveStatus")
        self.save_label.setWordWrap(True)

        name_row = QHBoxLayout()
        name_row.addWidget(QLabel("Name", self))
        name_row.addWidget(self.name_edit, 1)
        name_row.addWidget(self.version_label)
        name_row.addWidget(self.save_button)
        name_row.addWidget(self.save_active_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.picker)
        layout.addWidget(self.table)
        layout.addWidget(self.compare_label)
        layout.addWidget(self.figure, 1)
        layout.addLayout(name_row)
        layout.addWidget(self.save_label)

    # -- set up ------------------------------------------------------------------

    def initializePage(self) -> None:
        wizard = self.wizard()
        outcome = wizard.training_page.outcome
        if outcome is self.outcome:
            return  # back and forth without retraining: keep the comparison and save state
        self.outcome = outcome
        self.saved_entry = None
        self.current_probs = None
        self.save_label.clear()
        self.picker.set_value(outcome.card.threshold, emit=False)
        default_name = wizard.training_page.config.name
        self.name_edit.setText(default_name)
        self._set_saving_enabled(True)
        self.table.setHorizontalHeaderLabels(["New model", self._current_title()])
        self._start_scoring_current()
        self.refresh()
        self.completeChanged.emit()

    def _current_title(self) -> str:
        return f"Current: {self.current_model.label}" if self.current_model else "Current model"

    def _start_scoring_current(self) -> None:
        if self.job is not None:
            self.job.discard()
            self.job = None
        if self.current_model is None:
            self.current_note = "No current model to compare with."
            return
        entry, paths = self.current_model, list(self.outcome.val_paths)
        self.current_note = f"Running {entry.label} on the {len(paths)} validation images…"
        self.job = start_job(lambda report, cancel: score_model(entry, paths, report, cancel),
                             "compare-current-model", self, on_success=self._on_current_scored,
                             on_failure=self._on_current_failed)

    def _on_current_scored(self, probs) -> None:
        self.job = None
        self.current_probs = np.asarray(probs, dtype=float)
        failed = int(np.isnan(self.current_probs).sum())
        card = self.current_model.card
        self.current_note = (f"{self.current_model.label} at its own threshold {card.threshold:.4g} "
                             f"({card.input_size} px)"
                             + (f"; {failed} images it could not read are left out" if failed else "")
                             + ". If it was trained on some of these images, it looks better than it is.")
        self.refresh()

    def _on_current_failed(self, message: str) -> None:
        self.job = None
        self.current_note = f"The current model could not be run: {message}"
        self.refresh()

    # -- numbers and plots -----------------------------------------------------

    @property
    def threshold(self) -> float:
        return self.picker.value()

    def new_metrics(self) -> dict:
        return metrics_at(self.outcome.val_labels, self.outcome.val_probs, self.threshold)

    def current_metrics(self) -> dict | None:
        if self.current_probs is None:
            return None
        return metrics_at(self.outcome.val_labels, self.current_probs, self.current_model.card.threshold)

    def refresh(self) -> None:
        if self.outcome is None:
            return
        new, current = self.new_metrics(), self.current_metrics()
        for col, metrics in enumerate((new, current)):
            values = ("" if metrics is None else f"{metrics['threshold']:.4g}",
                      "" if metrics is None else _percent(metrics["sensitivity"]),
                      "" if metrics is None else _percent(metrics["specificity"]),
                      "" if metrics is None else _number(metrics["auroc"]),
                      "" if metrics is None else str(metrics["n"]))
            for row, text in enumerate(values):
                self.table.setItem(row, col, QTableWidgetItem(text))
        self.compare_label.setText(self.current_note)
        labels = self.outcome.val_labels
        curves = [self._curve("new model", NEW_COLOR, labels, self.outcome.val_probs, new)]
        if current is not None:
            ok = ~np.isnan(self.current_probs)
            curves.append(self._curve(self.current_model.label, CURRENT_COLOR, np.asarray(labels)[ok],
                                      self.current_probs[ok], current))
        self.figure.plot(curves, [(f"New model @ {self.threshold:.3f}", new),
                                  (self._current_title(), current)])

    @staticmethod
    def _curve(label, color, labels, probs, metrics):
        fpr, tpr = roc_points(labels, probs)
        point = None
        if metrics["sensitivity"] is not None and metrics["specificity"] is not None:
            point = (1.0 - metrics["specificity"], metrics["sensitivity"])
        auroc = metrics["auroc"]
        return (f"{label} (AUROC {auroc:.3f})" if auroc is not None else label, color, fpr, tpr, point)

    # -- saving --------------------------------------------------------------------

    def _update_name(self) -> None:
        from core.registry import next_version

        name = self.name_edit.text().strip()
        problem = name_problem(name)
        self.version_label.setText(problem or f"will be saved as {name} v{next_version(name)}")
        self._set_saving_enabled(self.saved_entry is None and self.save_job is None)

    def _set_saving_enabled(self, enabled: bool) -> None:
        enabled = enabled and name_problem(self.name_edit.text()) is None
        self.save_button.setEnabled(enabled)
        self.save_active_button.setEnabled(enabled)

    def save(self, activate: bool = False) -> None:
        """Register the model (on a worker: a large model takes a moment to write)."""
        if self.outcome is None or self.saved_entry is not None or self.save_job is not None:
            return
        outcome, name, threshold = self.outcome, self.name_edit.text(), self.threshold
        self._set_saving_enabled(False)
        self.name_edit.setEnabled(False)
        self.save_label.setText("Saving…")
        self.save_job = start_job(lambda report, cancel: save_new_model(outcome, name, threshold),
                                  "save-model", self,
                                  on_success=lambda entry: self._on_saved(entry, activate),
                                  on_failure=self._on_save_failed)

    def _on_saved(self, entry, activate: bool) -> None:
        self.save_job = None
        self.saved_entry = entry
        where = "and made active" if activate else "(choose it in the model list to use it)"
        created = entry.card.created.replace("T", " ").replace("+00:00", " UTC")
        self.save_label.setText(f"Saved as <b>{entry.label}</b>, created {created}, {where}.")
        self.version_label.clear()
        self.saved.emit(entry, activate)
        self.completeChanged.emit()

    def _on_save_failed(self, message: str) -> None:
        self.save_job = None
        self.name_edit.setEnabled(True)
        self.save_label.setText(f"<span style='color:#b00020'>Not saved: {message}</span>")
        self._update_name()

    def isComplete(self) -> bool:
        return self.saved_entry is not None

    def cleanup(self) -> None:
        if self.job is not None:
            self.job.discard()
        if self.save_job is not None:
            self.save_job.wait()  # never leave a model half-written
