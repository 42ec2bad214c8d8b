"""Wizard path "Calibrate to my site": the current model's operating point chosen on
the site's own labelled images (the data page's folder and/or the reader's decisions).

The model is screened once on a worker (TensorFlow never runs on the GUI
thread); changing the target sensitivity refits on a worker from the stored
raw probabilities. The page shows the ROC on these images with the chosen
point and the model's own point (95 % intervals), a table of both, and
registers a new version with the same weights via core.training.site_calibration.
"""
from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QDoubleSpinBox, QFormLayout, QHBoxLayout, QHeaderView, QLabel, QLineEdit,
                               QProgressBar, QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout,
                               QWizardPage)

from core.training.metrics import format_with_ci, roc_points
from desktop.text import note_label
from desktop.training_worker import let_finish, start_job
from core.training.comparison import name_problem, training_overlap
from desktop.wizard.plots import CalibrationFigure

COMMAND = "desktop training wizard: Calibrate to my site"


def screen_and_fit(entry, samples, target: float, report, cancel):
    """Worker job: raw probabilities, which images the model was trained on, and the fit."""
    from core.training.site_calibration import CalibrationRefused, fit_site_calibration, screen_samples

    readable, raw, unreadable = screen_samples(
        entry, samples, report=lambda done, total: report(("score", done, total)), cancel=cancel)
    overlap = training_overlap(entry.card, [s.path for s in readable], entry.label)
    try:
        calibration = fit_site_calibration(readable, raw, entry.card, target, unreadable)
    except CalibrationRefused as exc:
        calibration = str(exc)
    return {"readable": readable, "raw": raw, "unreadable": unreadable, "overlap": overlap,
            "calibration": calibration}


def refit(entry, screened: dict, target: float):
    """Worker job: a new target on the same raw probabilities (no TensorFlow)."""
    from core.training.site_calibration import CalibrationRefused, fit_site_calibration

    try:
        return fit_site_calibration(screened["readable"], screened["raw"], entry.card, target,
                                    screened["unreadable"])
    except CalibrationRefused as exc:
        return str(exc)


class CalibrationPage(QWizardPage):
    saved = Signal(object, bool)  # ModelEntry, make active

    ROWS = ("Threshold", "Temperature", "Sensitivity", "Specificity", "Accuracy", "AUROC", "ECE", "Brier score")
    OWN, CHOSEN, CROSS_VALIDATED = range(3)

    def __init__(self, current_model=None, parent=None):
        super().__init__(parent)
        self.setTitle("Calibrate to my site")
        self.setSubTitle("The same model, with a threshold (and temperature, where it helps) chosen on your "
                         "own labelled images. Nothing changes until you register it.")
        self.current_model = current_model
        self.base = None  # ModelEntry being calibrated
        self.samples = []
        self.source = ""
        self.screened: dict | None = None
        self.calibration = None  # core.training.site_calibration.SiteCalibration
        self.refusal: str | None = None
        self.saved_entry = None
        self.job = None
        self.save_job = None

        self.model_label = note_label(self)
        self.target_spin = QDoubleSpinBox(self, decimals=3, minimum=0.5, maximum=0.999, singleStep=0.005)
        self.target_spin.setValue(0.97)
        self.target_spin.setKeyboardTracking(False)
        self.target_spin.valueChanged.connect(lambda _v: self.start_fit())
        self.progress = QProgressBar(self)
        self.progress.setVisible(False)
        self.status_label = note_label(self)
        self.refusal_label = note_label(self, "calibrationRefused", warning=True)
        self.overlap_label = note_label(self, "trainingOverlap", warning=True)
        self.table = QTableWidget(len(self.ROWS), 3, self)
        self.table.setVerticalHeaderLabels(list(self.ROWS))
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.figure = CalibrationFigure(self)
        self.figure.setMinimumHeight(240)
        self.name_edit = QLineEdit(self)
        self.name_edit.textChanged.connect(lambda _t: self._update_buttons())
        self.version_label = QLabel(self)
        self.register_button = QPushButton("Register", self)
        self.register_active_button = QPushButton("Register and make active", self)
        self.register_button.clicked.connect(lambda: self.register(activate=False))
        self.register_active_button.clicked.connect(lambda: self.register(activate=True))
        self.save_label = note_label(self, "saveStatus")

        form = QFormLayout()
        form.addRow("Model", self.model_label)
        form.addRow("Target sensitivity", self.target_spin)
        name_row = QHBoxLayout()
        name_row.addWidget(QLabel("Name", self))
        name_row.addWidget(self.name_edit, 1)
        name_row.addWidget(self.version_label)
        name_row.addWidget(self.register_button)
        name_row.addWidget(self.register_active_button)
        body = QHBoxLayout()
        body.addWidget(self.table, 3)
        body.addWidget(self.figure, 2)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.status_label)
        layout.addWidget(self.refusal_label)
        layout.addWidget(self.overlap_label)
        layout.addLayout(body, 1)
        layout.addLayout(name_row)
        layout.addWidget(self.save_label)
        self._update_buttons()

    # -- set up --------------------------------------------------------------

    def initializePage(self) -> None:
        from core.models.registry import ModelError, find_model
        from core.training.site_calibration import default_name

        wizard = self.wizard()
        samples = list(wizard.data_page.check.readable) if wizard.data_page.check else []
        source = wizard.data_page.source_description()
        base = self.current_model
        if base is None:
            try:
                base = find_model(None)
            except ModelError as exc:
                self._show_refusal(f"No model to calibrate: {exc}")
                return
        if (base, source, [s.path for s in samples]) == (self.base, self.source, [s.path for s in self.samples]):
            return  # back and forth: keep the work done
        self.base, self.samples, self.source = base, samples, source
        self.screened = self.calibration = self.saved_entry = None
        self.model_label.setText(f"{base.label} ({base.card.architecture}, {base.card.input_size} px); "
                                 f"its own threshold {base.card.threshold:.4g}, temperature "
                                 f"{base.card.temperature:g}")
        self.name_edit.setText(default_name(base.card.name))
        self.save_label.clear()
        self.overlap_label.clear()
        self.start_fit()

    # -- work ------------------------------------------------------------------

    def start_fit(self) -> None:
        """Screen (first time) or refit (new target), on a worker; refuse early when too few."""
        from core.training.site_calibration import CalibrationRefused, check_enough

        if self.base is None or self.saved_entry is not None:
            return
        if self.job is not None:
            self.job.discard()
            self.job = None
        self.calibration = None
        target = self.target_spin.value()
        try:
            check_enough(self.samples, target)
        except CalibrationRefused as exc:
            self._show_refusal(str(exc))
            return
        self.refusal = None
        self.refusal_label.clear()
        base, samples, screened = self.base, list(self.samples), self.screened
        if screened is None:
            self.status_label.setText(f"Running {base.label} on {len(samples)} images…")
            self.progress.setRange(0, len(samples))
            self.progress.setValue(0)
            self.progress.setVisible(True)
            work = lambda report, cancel: screen_and_fit(base, samples, target, report, cancel)  # noqa: E731
        else:
            self.status_label.setText("Choosing the operating point…")
            work = lambda report, cancel: refit(base, screened, target)  # noqa: E731
        self.job = start_job(work, "site-calibration", self, on_progress=self._on_progress,
                             on_success=self._on_fitted, on_failure=self._on_failed)
        self._update_buttons()

    def _on_progress(self, payload) -> None:
        if payload[0] == "score":
            self.progress.setValue(payload[1])

    def _on_fitted(self, result) -> None:
        self.job = None
        self.progress.setVisible(False)
        if isinstance(result, dict):  # first run: screening included
            self.screened = result
            overlap = result["overlap"]
            if overlap is not None and overlap.seen:
                self.overlap_label.setText(
                    "Careful: " + overlap.sentence("these images") + " A threshold chosen on them will "
                    "not hold on new patients; calibrate on images the model has never seen.")
            result = result["calibration"]
        if isinstance(result, str):
            self._show_refusal(result)
            return
        self.calibration = result
        unreadable = len(result.unreadable)
        self.status_label.setText(
            f"{len(result.labels)} images ({int(result.labels.sum())} pneumonia, "
            f"{int((1 - result.labels).sum())} normal) from {self.source}"
            + (f"; {unreadable} unreadable files left out" if unreadable else "")
            + ". The chosen column is measured on the images it was chosen on (optimistic); the "
              "cross-validated column chose on the other patients each time.")
        self._show(result)
        self._update_buttons()

    def _on_failed(self, message: str) -> None:
        self.job = None
        self.progress.setVisible(False)
        self._show_refusal(f"Calibration failed: {message}")

    def _show_refusal(self, message: str) -> None:
        self.refusal = message
        self.calibration = None
        self.status_label.clear()
        self.refusal_label.setText(f"Cannot calibrate: {message}")
        self.table.clearContents()
        self._update_buttons()

    # -- display -------------------------------------------------------------------

    def _show(self, calibration) -> None:
        record = calibration.record
        columns = {self.OWN: (record["base_metrics"], self.base.card.temperature, "before"),
                   self.CHOSEN: (record["metrics"], calibration.temperature, "after"),
                   self.CROSS_VALIDATED: (record["cross_validated"], None, None)}
        self.table.setHorizontalHeaderLabels([f"{self.base.label} as it is", "Chosen for this site",
                                              "Cross-validated"])
        for col, (metrics, temperature, when) in columns.items():
            ci = (metrics or {}).get("ci95") or {}
            cells = ["" if metrics is None or metrics.get("threshold") is None else f"{metrics['threshold']:.4g}",
                     "" if temperature is None else f"{temperature:.3g}"]
            cells += [format_with_ci(metrics.get(k), ci.get(k)) if metrics else ""
                      for k in ("sensitivity", "specificity", "accuracy")]
            cells.append(format_with_ci(metrics.get("auroc"), ci.get("auroc"), percent=False) if metrics else "")
            cells += ["" if when is None else f"{record[f'ece_{when}']:.3f}",
                      "" if when is None else f"{record[f'brier_{when}']:.3f}"]
            for row, text in enumerate(cells):
                self.table.setItem(row, col, QTableWidgetItem(text))
        fpr, tpr = roc_points(calibration.labels, calibration.probabilities)
        auroc = record["metrics"]
        self.figure.plot(fpr, tpr, f"{self.base.label} (AUROC "
                                   f"{format_with_ci(auroc['auroc'], auroc['ci95']['auroc'], percent=False)})",
                         record["metrics"], record["base_metrics"],
                         f"its own threshold {self.base.card.threshold:.3g}")

    # -- registering -----------------------------------------------------------------

    def _update_buttons(self) -> None:
        from core.models.registry import next_version

        name = self.name_edit.text().strip()
        problem = name_problem(name)
        ready = self.calibration is not None and self.saved_entry is None and self.save_job is None
        self.version_label.setText(problem or (f"will be registered as {name} v{next_version(name)}"
                                               if self.saved_entry is None else ""))
        for button in (self.register_button, self.register_active_button):
            button.setEnabled(ready and problem is None)

    def register(self, activate: bool = False) -> None:
        if self.calibration is None or self.saved_entry is not None or self.save_job is not None:
            return
        from core.training.site_calibration import register

        base, calibration, name, source = self.base, self.calibration, self.name_edit.text(), self.source
        self.name_edit.setEnabled(False)
        self.target_spin.setEnabled(False)
        self.save_label.setText("Registering…")
        self.save_job = start_job(lambda report, cancel: register(base, calibration, name, source, COMMAND),
                                  "register-site-calibration", self,
                                  on_success=lambda entry: self._on_registered(entry, activate),
                                  on_failure=self._on_register_failed)
        self._update_buttons()

    def _on_registered(self, entry, activate: bool) -> None:
        self.save_job = None
        self.saved_entry = entry
        where = "and made active" if activate else "(choose it in the model list to use it)"
        self.save_label.setText(f"Registered <b>{entry.label}</b> (same weights as {self.base.label}) {where}.")
        self._update_buttons()
        self.saved.emit(entry, activate)
        self.completeChanged.emit()

    def _on_register_failed(self, message: str) -> None:
        self.save_job = None
        self.name_edit.setEnabled(True)
        self.target_spin.setEnabled(True)
        self.save_label.setText(f"<span style='color:#b00020'>Not registered: {message}</span>")
        self._update_buttons()

    def isComplete(self) -> bool:
        return self.saved_entry is not None

    def nextId(self) -> int:
        return -1

    def cleanup(self) -> None:
        if self.job is not None:
            self.job.discard()
        if self.save_job is not None:
            let_finish(self.save_job)  # the registration completes on its worker; nobody waits

