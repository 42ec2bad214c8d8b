"""Wizard page 3: the training run, live.

core.training.trainer.train runs on a BackgroundJob thread; its batch and epoch
callbacks arrive here as queued signals. Stop sets the cancel event, which
core.training.trainer checks after every batch; nothing reaches the registry until
the results page saves, so a stopped or failed run leaves no model behind.
"""
from __future__ import annotations

import functools
import shutil
import time
from pathlib import Path

from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QVBoxLayout, QWizardPage

from core.training.metrics import format_with_ci, metrics_with_ci
from desktop.training_worker import BATCH, EPOCH, LOG, run_training, start_job
from desktop.wizard.plots import TrainingCurves
from core.formatting import format_duration

_LOSS_POINTS_PER_EPOCH = 10  # running-loss points plotted per epoch


class TrainingPage(QWizardPage):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setTitle("Training")
        self.setSubTitle("The rest of PneumoScan stays usable while the model trains.")
        self.job = None
        self.config = None
        self.outcome = None  # core.training.trainer.TrainOutcome once finished
        self.error: str | None = None
        self.was_cancelled = False
        self._steps = 0
        self._started = None  # monotonic time of the first batch (decoding excluded)
        self._first_done = 0  # batches already done at the first report

        self.status_label = QLabel(self)
        self.status_label.setWordWrap(True)
        self.progress = QProgressBar(self)
        self.time_label = QLabel(self)
        self.stop_button = QPushButton("Stop training", self)
        self.stop_button.setToolTip("Stops after the current batch; nothing is saved.")
        self.stop_button.clicked.connect(self.stop)
        self.error_label = QLabel(self)
        self.error_label.setObjectName("trainingError")
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #b00020;")
        self.curves = TrainingCurves(self)
        self.curves.setMinimumHeight(220)

        row = QHBoxLayout()
        row.addWidget(self.progress, 1)
        row.addWidget(self.time_label)
        row.addWidget(self.stop_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.status_label)
        layout.addLayout(row)
        layout.addWidget(self.curves, 1)
        layout.addWidget(self.error_label)

    # -- run -------------------------------------------------------------------

    def initializePage(self) -> None:
        wizard = self.wizard()
        self.start(wizard.build_config())

    def start(self, config) -> None:
        self.discard()
        self.config = config
        self.outcome, self.error, self.was_cancelled = None, None, False
        self._steps, self._started, self._first_done = 0, None, 0
        self.curves.clear()
        self.error_label.clear()
        self.time_label.clear()
        self.progress.setRange(0, 0)  # busy until the first batch tells the step count
        self.status_label.setText("Preparing: reading and resizing the images…")
        self.stop_button.setEnabled(True)
        self.job = start_job(run_training(config), "training", self, on_progress=self._on_progress,
                             on_success=self._on_finished, on_failure=self._on_failed,
                             on_cancel=self._on_cancelled)
        self.completeChanged.emit()

    def stop(self) -> None:
        if self.is_running:
            self.job.cancel()
            self.stop_button.setEnabled(False)
            self.status_label.setText("Stopping after the current batch…")

    def discard(self) -> None:
        """Stop a run whose results nobody will look at (Back, closing the wizard)."""
        if self.job is not None and self.job.is_running():
            self.job.discard()
            self._remove_run_folder(self.job)
        self.job = None

    @property
    def is_running(self) -> bool:
        return self.job is not None and self.job.is_running()

    def cleanupPage(self) -> None:
        self.discard()
        self.outcome = None

    def isComplete(self) -> bool:
        return self.outcome is not None

    # -- progress --------------------------------------------------------------

    def _on_progress(self, payload) -> None:
        kind = payload[0]
        if kind == BATCH:
            self._on_batch(*payload[1:])
        elif kind == EPOCH:
            self._on_epoch(*payload[1:])
        elif kind == LOG:
            self.status_label.setText(payload[1].capitalize())

    def _on_batch(self, epoch: int, batch: int, steps: int, loss) -> None:
        epochs = self.config.epochs
        if self._steps != steps:
            self._steps = steps
            self.progress.setRange(0, epochs * steps)
        if self._started is None:
            self._started = time.monotonic()
            self._first_done = epoch * steps + batch  # a resumed or late start
        done = epoch * steps + batch
        self.progress.setValue(done)
        self.status_label.setText(f"Epoch {epoch + 1} of {epochs}, batch {batch} of {steps}")
        counted = done - self._first_done
        elapsed = time.monotonic() - self._started
        if counted > 0 and elapsed > 0:
            left = (epochs * steps - done) * elapsed / counted
            self.time_label.setText(f"about {format_duration(left)} left")
        every = max(1, steps // _LOSS_POINTS_PER_EPOCH)
        if loss is not None and (batch % every == 0 or batch == steps):
            self.curves.add_batch_loss(epoch + batch / steps, float(loss))

    def _on_epoch(self, epoch: int, record: dict) -> None:
        self.curves.add_epoch(epoch, record.get("loss"), record.get("val_loss"), record.get("val_auroc"))

    # -- endings ---------------------------------------------------------------

    def _on_finished(self, outcome) -> None:
        self.job = None
        self.outcome = outcome
        self.stop_button.setEnabled(False)
        self.progress.setValue(self.progress.maximum())
        self.time_label.clear()
        metrics = outcome.card.validation_metrics
        # AUROC and its interval on every validation image (both classes are there: training checks).
        whole = metrics_with_ci(outcome.val_labels, outcome.val_probs, outcome.card.threshold)
        auroc = whole["auroc"]
        self.status_label.setText(
            f"Finished. Best epoch {metrics.get('best_epoch')} of {len(outcome.history)}"
            + (f", validation AUROC {format_with_ci(auroc, whole['ci95']['auroc'], percent=False)} on "
               f"{len(outcome.val_labels)} images (the best epoch was chosen on part of them, so this "
               "leans optimistic)" if auroc is not None else "")
            + ". Next: compare with the current model and save.")
        self.completeChanged.emit()

    def _on_failed(self, message: str) -> None:
        self.job = None
        self.error = message
        self._ended("Training stopped with an error.")
        self.error_label.setText(f"{message}\n\nGo back to change the data or the settings.")

    def _on_cancelled(self) -> None:
        job, self.job = self.job, None
        self.was_cancelled = True
        self._ended("Training cancelled: nothing was saved. Go back to change the settings and train again.")
        self._remove_run_folder(job)

    def _ended(self, text: str) -> None:
        self.stop_button.setEnabled(False)
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.time_label.clear()
        self.status_label.setText(text)
        self.completeChanged.emit()

    def _remove_run_folder(self, job) -> None:
        """Checkpoints of a run nobody will resume (the wizard cannot resume) waste disk.

        Removed on the job's own thread once its function has returned (it may
        still be writing), so neither the page nor the GUI thread waits for it;
        only inside the user's training-runs folder.
        """
        if job is None or self.config is None or not self.config.run_dir:
            return
        job.after_end(functools.partial(_remove_abandoned_run, Path(self.config.run_dir)))

    def sweep_abandoned_runs(self) -> None:
        """Kept for callers: abandoned runs now remove themselves when their job ends."""


def _remove_abandoned_run(run_dir: Path) -> None:
    from core import paths

    if run_dir.resolve().parent == paths.training_runs_dir().resolve():
        shutil.rmtree(run_dir, ignore_errors=True)


def remove_unsaved_run(outcome) -> None:
    """A finished run the reader left without saving (Cancel at Results): its checkpoints
    (tens of MB) go, on a pool thread; only inside the user's training-runs folder."""
    from desktop.workers import run_in_pool

    run_dir = getattr(outcome, "run_dir", None)
    if run_dir:
        run_in_pool(functools.partial(_remove_abandoned_run, Path(run_dir)),
                    context="Removing an unsaved training run")
