"""Wizard page 4: the new model beside the current one, a threshold, and saving.

Both models are judged on the new model's validation split (patients the new
model never trained on), at thresholds chosen by the same rule on those
images, with 95 % intervals on every number. The current model is run over
the same files on a worker, through the screening code, at its own input
size; the same worker checks which of the images it was trained on.
"Save and make active" needs enough validation positives and negatives for
the numbers to mean something (core.training.metrics.evidence_shortfall).
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QFrame, QHBoxLayout, QHeaderView, QLabel, QLineEdit, QPushButton, QScrollArea,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget, QWizardPage)

from core.training.comparison import (activation_problem, auroc_interval, metrics_at, name_problem,
                                     new_model_probs, proposed_threshold, rule_threshold, save_new_model,
                                     score_model, training_overlap)
from core.training.metrics import format_with_ci, roc_points
from desktop.text import note_label
from desktop.threshold_control import ThresholdControl
from desktop.training_worker import let_finish, start_job
from desktop.wizard.training_page import remove_unsaved_run
from desktop.wizard.plots import CURRENT_COLOR, NEW_COLOR, ComparisonFigure

PICKED_COLOR = "#ff7f0e"


def metric_cells(metrics: dict | None) -> tuple[str, ...]:
    """Table cells for one model: threshold, sensitivity, specificity, accuracy, AUROC, images."""
    if metrics is None:
        return ("",) * 6
    ci = metrics.get("ci95") or {}
    threshold = metrics["threshold"]
    return ("n/a" if threshold is None else f"{threshold:.4g}",
            format_with_ci(metrics["sensitivity"], ci.get("sensitivity")),
            format_with_ci(metrics["specificity"], ci.get("specificity")),
            format_with_ci(metrics["accuracy"], ci.get("accuracy")),
            format_with_ci(metrics["auroc"], ci.get("auroc"), percent=False),
            f"{metrics['tp'] + metrics['fn']} / {metrics['tn'] + metrics['fp']}")


def score_and_check(entry, paths: list[str], report, cancel):
    """Worker job: the current model's probabilities and which images it was trained on."""
    probs = score_model(entry, paths, report, cancel)
    return probs, training_overlap(entry.card, paths, entry.label)


class ResultsPage(QWizardPage):
    saved = Signal(object, bool)  # ModelEntry, make active

    ROWS = ("Threshold", "Sensitivity", "Specificity", "Accuracy", "AUROC", "Images (pneumonia / normal)")
    # Columns: both models at the same rule, then the new model at the picked threshold.
    NEW_RULE, CURRENT_RULE, NEW_PICKED = range(3)

    def __init__(self, current_model=None, parent=None):
        super().__init__(parent)
        self.setTitle("Results")
        self.setSubTitle("Both models on the new model's validation split, at thresholds chosen the same "
                         "way, with 95% confidence intervals. Pick the threshold, name the model and save it.")
        self.current_model = current_model  # ModelEntry or None
        self.outcome = None
        self.new_probs: np.ndarray | None = None
        self.current_probs: np.ndarray | None = None
        self.current_overlap = None  # comparison.Overlap or None
        self.current_note = ""
        self.target = 0.97
        self.fine_tuned = False  # the new model started from the current one's weights
        self.auroc_ci: dict[str, list | None] = {}
        self.saved_entry = None
        self.job = None  # scoring the current model
        self.save_job = None

        # Full range and 4 decimals: a model's operating point is picked here.
        self.picker = ThresholdControl(0.5, self, decimals=4, minimum=0.0, maximum=1.0)
        self.picker.threshold_changed.connect(lambda _v: self.refresh())
        self.table = QTableWidget(len(self.ROWS), 3, self)
        self.table.setVerticalHeaderLabels(list(self.ROWS))
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.setSizeAdjustPolicy(QTableWidget.SizeAdjustPolicy.AdjustToContents)
        self.figure = ComparisonFigure(self)
        self.figure.setMinimumHeight(220)
        self.rule_label = note_label(self)
        self.compare_label = note_label(self)
        self.overlap_label = note_label(self, "trainingOverlap", warning=True)
        self.activation_label = note_label(self, "activationProblem", warning=True)
        self.name_edit = QLineEdit(self)
        self.name_edit.textChanged.connect(lambda _t: self._update_name())
        self.version_label = QLabel(self)
        self.save_button = QPushButton("Save", self)
        self.save_active_button = QPushButton("Save and make active", self)
        self.save_button.clicked.connect(lambda: self.save(activate=False))
        self.save_active_button.clicked.connect(lambda: self.save(activate=True))
        self.save_label = note_label(self, "saveStatus")

        name_row = QHBoxLayout()
        name_row.addWidget(QLabel("Name", self))
        name_row.addWidget(self.name_edit, 1)
        name_row.addWidget(self.version_label)
        name_row.addWidget(self.save_button)
        name_row.addWidget(self.save_active_button)
        # The numbers, notes and charts scroll together: at a small window nothing is
        # squeezed over anything else, and the table is never clipped.
        content = QWidget(self)
        layout = QVBoxLayout(content)
        layout.addWidget(self.picker)
        layout.addWidget(self.table)
        layout.addWidget(self.rule_label)
        layout.addWidget(self.compare_label)
        layout.addWidget(self.overlap_label)
        layout.addWidget(self.figure, 1)
        layout.addWidget(self.activation_label)
        layout.addLayout(name_row)
        layout.addWidget(self.save_label)
        self.scroll = QScrollArea(self)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setWidget(content)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.scroll)

    # -- set up ------------------------------------------------------------------

    def initializePage(self) -> None:
        wizard = self.wizard()
        outcome = wizard.training_page.outcome
        if outcome is self.outcome:
            return  # back and forth without retraining: keep the comparison and save state
        self.outcome = outcome
        config = wizard.training_page.config
        self.target = float(getattr(config, "target_sensitivity", 0.97))
        self.fine_tuned = bool(self.current_model is not None
                               and str(getattr(config, "init", "")) == str(self.current_model.keras_path))
        self.new_probs = new_model_probs(outcome)
        self.auroc_ci = {"new": auroc_interval(outcome.val_labels, self.new_probs)}
        self.saved_entry = None
        self.current_probs = None
        self.current_overlap = None
        self.overlap_label.clear()
        self.save_label.clear()
        self.picker.set_value(proposed_threshold(outcome.card.threshold), emit=False)
        self.name_edit.setText(config.name)
        self.table.setHorizontalHeaderLabels(["New model (same rule)", f"{self._current_title()} (same rule)",
                                              "New model at your threshold"])
        self._start_scoring_current()
        self.refresh()
        self.completeChanged.emit()

    def _current_title(self) -> str:
        return f"Current: {self.current_model.label}" if self.current_model else "Current model"

    def _activation_problem(self) -> str | None:
        """Why the new model, at the picked threshold, may not be made active (None: it may)."""
        if self.outcome is None:
            return None
        return activation_problem(self.outcome.val_labels, self.new_probs, self.threshold, self.target)

    def _activation_text(self) -> str:
        problem = self._activation_problem()
        if problem is None:
            return ""
        return (f"\"Save and make active\" is off: {problem} The numbers above cannot show that the model "
                "is good enough to screen with. You can still save it; its card will say it is not validated.")

    def _start_scoring_current(self) -> None:
        if self.job is not None:
            self.job.discard()
            self.job = None
        if self.current_model is None:
            self.current_note = "No current model to compare with."
            return
        entry, paths = self.current_model, list(self.outcome.val_paths)
        self.current_note = f"Running {entry.label} on the {len(paths)} validation images…"
        self.job = start_job(lambda report, cancel: score_and_check(entry, paths, report, cancel),
                             "compare-current-model", self, on_success=self._on_current_scored,
                             on_failure=self._on_current_failed)

    def _on_current_scored(self, result) -> None:
        self.job = None
        probs, overlap = result
        self.current_probs = np.asarray(probs, dtype=float)
        self.current_overlap = overlap
        self.auroc_ci["current"] = auroc_interval(self.outcome.val_labels, self.current_probs)
        failed = int(np.isnan(self.current_probs).sum())
        self.current_note = (f"{self.current_model.label} runs at its own input size "
                             f"({self.current_model.card.input_size} px)"
                             + (f"; {failed} images it could not read are left out" if failed else "") + ".")
        self.overlap_label.setText(self._overlap_text())
        self.refresh()

    def _overlap_text(self) -> str:
        overlap = self.current_overlap
        if overlap is None or overlap.seen == 0:
            return ""
        text = "Not a fair comparison: " + overlap.sentence("the validation images")
        if self.fine_tuned:
            text += " The new model started from its weights, so it has seen them too."
        return text

    def _on_current_failed(self, message: str) -> None:
        self.job = None
        self.current_note = f"The current model could not be run: {message}"
        self.refresh()

    # -- numbers and plots -----------------------------------------------------

    @property
    def threshold(self) -> float:
        return self.picker.value()

    def new_metrics(self) -> dict:
        """The new model at the picked threshold."""
        return metrics_at(self.outcome.val_labels, self.new_probs, self.threshold, self.auroc_ci.get("new"))

    def new_rule_metrics(self) -> dict | None:
        threshold = rule_threshold(self.outcome.val_labels, self.new_probs, self.target)
        if threshold is None:
            return None
        return metrics_at(self.outcome.val_labels, self.new_probs, threshold, self.auroc_ci.get("new"))

    def current_metrics(self, threshold: float | None = None) -> dict | None:
        """The current model at `threshold`, by default at the same rule as the new model."""
        if self.current_probs is None:
            return None
        if threshold is None:
            threshold = rule_threshold(self.outcome.val_labels, self.current_probs, self.target)
            if threshold is None:
                return None
        return metrics_at(self.outcome.val_labels, self.current_probs, threshold, self.auroc_ci.get("current"))

    def refresh(self) -> None:
        if self.outcome is None:
            return
        new, new_rule, current = self.new_metrics(), self.new_rule_metrics(), self.current_metrics()
        for col, metrics in ((self.NEW_RULE, new_rule), (self.CURRENT_RULE, current), (self.NEW_PICKED, new)):
            for row, text in enumerate(metric_cells(metrics)):
                self.table.setItem(row, col, QTableWidgetItem(text))
        self._fit_table()
        n = len(self.outcome.val_labels)
        self.rule_label.setText(
            f"Same rule for both: the highest threshold that reaches sensitivity ≥ {self.target:.0%} on these "
            f"{n} validation images (each on its model's calibrated scale). The thresholds are chosen on the "
            "images they are measured on, so both columns are somewhat optimistic.")
        note = self.current_note
        if self.current_probs is not None:
            own = self.current_metrics(self.current_model.card.threshold)
            note += (f" At its own threshold {own['threshold']:.4g}: sensitivity "
                     f"{format_with_ci(own['sensitivity'], own['ci95']['sensitivity'])}, specificity "
                     f"{format_with_ci(own['specificity'], own['ci95']['specificity'])}.")
        self.compare_label.setText(note)
        labels = self.outcome.val_labels
        curves = [self._curve("new model", NEW_COLOR, labels, self.new_probs, new_rule)]
        if current is not None:
            ok = ~np.isnan(self.current_probs)
            curves.append(self._curve(self.current_model.label, CURRENT_COLOR, np.asarray(labels)[ok],
                                      self.current_probs[ok], current))
        curves.append(("new model at your threshold", PICKED_COLOR, [], [], new))
        self.figure.plot(curves, [(f"New model @ {self.threshold:.4g}", new),
                                  (f"{self._current_title()} (same rule)", current)])
        # The verdict follows the picked threshold: sensitivity there must reach the target.
        self.activation_label.setText(self._activation_text())
        self._set_saving_enabled(self.saved_entry is None and self.save_job is None)

    def _fit_table(self) -> None:
        """Tall enough for every row and wide enough for every cell: no clipped numbers."""
        table = self.table
        table.resizeRowsToContents()
        header = table.horizontalHeader()
        widths = [max(header.sectionSizeHint(c), table.sizeHintForColumn(c)) for c in range(table.columnCount())]
        table.setMinimumWidth(table.verticalHeader().width() + sum(widths) + 2 * table.frameWidth() + 4)
        height = header.height() + sum(table.rowHeight(r) for r in range(table.rowCount()))
        table.setFixedHeight(height + 2 * table.frameWidth() + 2)

    @staticmethod
    def _curve(label, color, labels, probs, metrics):
        fpr, tpr = roc_points(labels, probs)
        auroc = None if metrics is None else metrics["auroc"]
        ci = None if metrics is None else metrics["ci95"].get("auroc")
        text = label if auroc is None else f"{label} (AUROC {format_with_ci(auroc, ci, percent=False)})"
        return (text, color, fpr, tpr, metrics)

    # -- saving --------------------------------------------------------------------

    def _update_name(self) -> None:
        from core.models.registry import next_version

        name = self.name_edit.text().strip()
        problem = name_problem(name)
        self.version_label.setText(problem or f"will be saved as {name} v{next_version(name)}")
        self._set_saving_enabled(self.saved_entry is None and self.save_job is None)

    def _set_saving_enabled(self, enabled: bool) -> None:
        enabled = enabled and name_problem(self.name_edit.text()) is None
        self.save_button.setEnabled(enabled)
        may_activate = self.outcome is not None and self._activation_problem() is None
        self.save_active_button.setEnabled(enabled and may_activate)

    def save(self, activate: bool = False) -> None:
        """Register the model (on a worker: a large model takes a moment to write)."""
        if self.outcome is None or self.saved_entry is not None or self.save_job is not None:
            return
        if activate and self._activation_problem() is not None:
            return  # the button is off; a direct call must not get round the rule
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

    def nextId(self) -> int:
        return -1  # the calibration page is another path, not a page after this one

    def cleanup(self) -> None:
        if self.job is not None:
            self.job.discard()
        if self.save_job is not None:
            let_finish(self.save_job)  # never a half-written model: the save completes on its worker
        elif self.outcome is not None and self.saved_entry is None:
            remove_unsaved_run(self.outcome)
