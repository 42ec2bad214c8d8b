"""Wizard page 1: what to train on, and whether it is enough.

Every change of source starts a fresh check on a worker thread (reading the
reader's decisions from the store, then loading each image once), so a large
folder never freezes the window; the previous check is discarded.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (QButtonGroup, QCheckBox, QFileDialog, QHBoxLayout, QLabel, QLineEdit,
                               QListWidget, QProgressBar, QPushButton, QRadioButton, QVBoxLayout, QWizardPage)

from core.training.dataset import CLASSES
from desktop.training_worker import start_job
from core.reading.decision_labels import decision_samples
from core.training.data_sources import check_readability, collect_samples

_RECHECK_DELAY_MS = 400  # typing a path: wait until the user pauses


TRAIN, CALIBRATE = "train", "calibrate"


class DataPage(QWizardPage):
    def __init__(self, study_folder=None, store=None, parent=None, mode: str = TRAIN):
        super().__init__(parent)
        self.setTitle("Training data")
        self.setSubTitle("Images with known labels: a labelled folder, the labels you confirmed "
                         "while reading a study, or both.")
        self.study_folder = Path(study_folder) if study_folder else None
        self.store = store  # a ResultStore, a database path, or None for the user's store
        self.check = None  # sources.DataCheck of the current choice, once finished
        self.job = None

        self.train_radio = QRadioButton("Train a model on these images", self)
        self.calibrate_radio = QRadioButton(
            "Calibrate the current model to my site: same model, threshold chosen on these images", self)
        self.calibrate_radio.setToolTip("Labelled images from your own site that the model has never seen; "
                                        "the threshold (and temperature, where it helps) is chosen on them.")
        self.mode_group = QButtonGroup(self)
        self.mode_group.addButton(self.train_radio)
        self.mode_group.addButton(self.calibrate_radio)
        (self.calibrate_radio if mode == CALIBRATE else self.train_radio).setChecked(True)
        if mode == CALIBRATE:
            self.setTitle("Labelled images from your site")
        self.folder_check = QCheckBox("A folder with NORMAL and PNEUMONIA sub-folders", self)
        self.folder_edit = QLineEdit(self)
        self.folder_edit.setPlaceholderText("folder path")
        self.browse_button = QPushButton("Browse…", self)
        self.decisions_check = QCheckBox(self)
        if self.study_folder is not None:
            self.decisions_check.setText(f"The decisions I made in this study ({self.study_folder.name})")
            self.decisions_check.setToolTip(
                f"Images in {self.study_folder} you agreed or disagreed with: your label is used. "
                "Unsure and undone decisions are left out.")
        else:
            self.decisions_check.setText("The decisions I made in this study")
            self.decisions_check.setEnabled(False)
            self.decisions_check.setToolTip("Open and review a study first: no study is open.")
        self.progress = QProgressBar(self)
        self.progress.setVisible(False)
        self.summary_label = QLabel(self)
        self.summary_label.setTextFormat(Qt.TextFormat.RichText)
        self.summary_label.setWordWrap(True)
        self.problem_label = QLabel(self)
        self.problem_label.setObjectName("dataProblem")
        self.problem_label.setWordWrap(True)
        self.problem_label.setStyleSheet("color: #b00020;")
        self.unreadable_title = QLabel(self)
        self.unreadable_list = QListWidget(self)
        self.unreadable_list.setObjectName("unreadableFiles")

        folder_row = QHBoxLayout()
        folder_row.addSpacing(20)
        folder_row.addWidget(self.folder_edit, 1)
        folder_row.addWidget(self.browse_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.train_radio)
        layout.addWidget(self.calibrate_radio)
        layout.addSpacing(8)
        layout.addWidget(self.folder_check)
        layout.addLayout(folder_row)
        layout.addWidget(self.decisions_check)
        layout.addSpacing(8)
        layout.addWidget(self.progress)
        layout.addWidget(self.summary_label)
        layout.addWidget(self.problem_label)
        layout.addWidget(self.unreadable_title)
        layout.addWidget(self.unreadable_list, 1)

        self._recheck_timer = QTimer(self, singleShot=True, interval=_RECHECK_DELAY_MS)
        self._recheck_timer.timeout.connect(self.start_check)
        self.browse_button.clicked.connect(self.browse)
        self.folder_edit.textChanged.connect(self._folder_typed)
        self.folder_check.toggled.connect(lambda _on: self._source_changed())
        self.decisions_check.toggled.connect(lambda _on: self._source_changed())
        self.mode_group.buttonToggled.connect(lambda _b, _on: self._mode_changed())
        self._show_idle()

    # -- the choice ----------------------------------------------------------

    @property
    def folder(self) -> str | None:
        text = self.folder_edit.text().strip()
        return text if self.folder_check.isChecked() and text else None

    @property
    def mode(self) -> str:
        return CALIBRATE if self.calibrate_radio.isChecked() else TRAIN

    def source_description(self) -> str:
        """Where the labelled images come from, as recorded in a card."""
        parts = []
        if self.folder:
            parts.append(self.folder)
        if self.use_decisions:
            parts.append(f"the reader's decisions in study {self.study_folder}")
        return " + ".join(parts) or "no source"

    def nextId(self) -> int:
        wizard = self.wizard()
        if self.mode == CALIBRATE and wizard is not None and wizard.calibration_page_id >= 0:
            return wizard.calibration_page_id
        return super().nextId()

    @property
    def use_decisions(self) -> bool:
        return self.decisions_check.isEnabled() and self.decisions_check.isChecked()

    def set_sources(self, folder: str | None = None, decisions: bool = False) -> None:
        """Choose the sources in one go (tests, or a caller that knows) and check at once."""
        with _Quiet(self.folder_edit, self.folder_check, self.decisions_check):
            self.folder_edit.setText(str(folder) if folder else "")
            self.folder_check.setChecked(bool(folder))
            self.decisions_check.setChecked(decisions)
        self.start_check()

    def browse(self) -> None:
        start = self.folder_edit.text() or str(self.study_folder or Path.home())
        folder = QFileDialog.getExistingDirectory(self, "Folder with NORMAL and PNEUMONIA sub-folders", start)
        if folder:
            self.folder_edit.setText(folder)
            self.folder_check.setChecked(True)
            self.start_check()

    def _mode_changed(self) -> None:
        self.setTitle("Labelled images from your site" if self.mode == CALIBRATE else "Training data")
        self._show_problem()
        self.completeChanged.emit()

    def _folder_typed(self, _text: str) -> None:
        if not self.folder_check.isChecked():
            self.folder_check.setChecked(True)  # typing a path means "use it"
        self._source_changed()

    def _source_changed(self) -> None:
        self._invalidate()
        self._recheck_timer.start()

    # -- the check -----------------------------------------------------------

    def start_check(self) -> None:
        self._recheck_timer.stop()
        self._invalidate()
        folder, use_decisions = self.folder, self.use_decisions
        if folder is None and not use_decisions:
            self._show_idle()
            return
        if folder is not None and not Path(folder).is_dir():
            self.problem_label.setText(f"The folder {folder} does not exist.")
            return
        study, store = self.study_folder, self.store

        def work(report, cancel):
            decisions = _read_decisions(store, study) if use_decisions else None
            collected = collect_samples(folder, decisions)
            report(("collected", len(collected.samples)))
            return check_readability(collected, report, cancel)

        self.progress.setRange(0, 0)
        self.progress.setVisible(True)
        self.summary_label.setText("Listing images…")
        self.job = start_job(work, "training-data-check", self, on_progress=self._on_progress,
                             on_success=self._on_checked, on_failure=self._on_failed)

    def _invalidate(self) -> None:
        if self.job is not None:
            self.job.discard()
            self.job = None
        if self.check is not None:
            self.check = None
            self.completeChanged.emit()
        self.problem_label.clear()
        self.unreadable_title.clear()
        self.unreadable_list.clear()

    def _show_idle(self) -> None:
        self.progress.setVisible(False)
        self.summary_label.setText("Choose at least one source of labelled images.")

    def _on_progress(self, payload) -> None:
        if payload[0] == "collected":
            self.progress.setRange(0, max(1, payload[1]))
            self.progress.setValue(0)
            self.summary_label.setText(f"Checking that {payload[1]} images can be read…")
        elif payload[0] == "check":
            self.progress.setValue(payload[1])

    def _on_failed(self, message: str) -> None:
        self.job = None
        self.progress.setVisible(False)
        self.summary_label.clear()
        self.problem_label.setText(f"The training data could not be listed: {message}")

    def _on_checked(self, check) -> None:
        self.job = None
        self.check = check
        self.progress.setVisible(False)
        self.summary_label.setText(self._summary_html(check))
        if check.unreadable:
            self.unreadable_title.setText(f"{len(check.unreadable)} files cannot be read and will be left out:")
            for path, reason in check.unreadable:
                self.unreadable_list.addItem(f"{path}: {reason}")
        self.completeChanged.emit()
        self._show_problem()

    def _show_problem(self) -> None:
        problem = self.problem()
        self.problem_label.setText(problem or "")

    def problem(self) -> str | None:
        """Why the chosen task cannot go on with these images (None once it can)."""
        if self.check is None:
            return None
        if self.mode == CALIBRATE:
            if not all(self.check.counts.values()):
                return "Calibration needs readable images of both classes."
            return None  # how many are enough depends on the target: the calibration page says
        problem = self.check.shortfall()
        return f"Training cannot start. {problem}" if problem else None

    @staticmethod
    def _summary_html(check) -> str:
        counts, patients = check.counts, check.patients
        rows = "".join(f"<tr><td>{c.title()}</td><td align='right'>{counts[c]}</td>"
                       f"<td align='right'>{patients[c]}</td></tr>" for c in CLASSES)
        notes = []
        collected = check.collected
        if collected.decisions_requested:
            notes.append(f"{len(collected.extra_samples)} from your decisions in the study "
                         "(agree or disagree; unsure and undone ones are left out)"
                         if collected.decisions_total else "You have no confirmed decisions in this study yet")
        if collected.decisions_in_folder:
            notes.append(f"{collected.decisions_in_folder} decided images are also in the folder and are "
                         f"used once, with the folder's label ({collected.decisions_conflicting} of them "
                         "differ from your decision)")
        note = "".join(f"<br>{n}." for n in notes)
        return (f"<b>{len(check.readable)} readable images</b> from {check.patient_total} patients"
                f"<table cellspacing='6'><tr><th align='left'>Class</th><th>Images</th><th>Patients</th></tr>"
                f"{rows}</table>{note}")

    # -- what the wizard reads -----------------------------------------------

    def sample_pairs(self) -> list[tuple[str, str]]:
        """(path, label) of every image the current choice trains on (before the read check)."""
        if self.check is None:
            return []
        return [(s.path, s.label) for s in self.check.collected.samples]

    def extra_samples(self) -> list[tuple[str, str]]:
        return list(self.check.collected.extra_samples) if self.check else []

    def readable_count(self) -> int:
        return len(self.check.readable) if self.check else 0

    def isComplete(self) -> bool:
        return self.check is not None and self.problem() is None

    def cleanup(self) -> None:
        self._recheck_timer.stop()
        if self.job is not None:
            self.job.discard()


def _read_decisions(store, study_folder) -> list[tuple[str, str]]:
    """The study's decisions, read on the calling (worker) thread."""
    from core.reading.store import ResultStore

    if isinstance(store, ResultStore):  # thread-safe: one connection per thread
        return decision_samples(store, study_folder)
    with ResultStore(store) as own:
        return decision_samples(own, study_folder)


class _Quiet:
    """Block the given widgets' signals for a batch of programmatic changes."""

    def __init__(self, *widgets):
        self.widgets = widgets

    def __enter__(self):
        self.previous = [w.blockSignals(True) for w in self.widgets]

    def __exit__(self, *exc):
        for widget, was in zip(self.widgets, self.previous):
            widget.blockSignals(was)
