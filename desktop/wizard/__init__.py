"""The training wizard: data -> settings -> training -> results, or
data -> "Calibrate to my site" (the current model's operating point chosen on
the site's labelled images; see core.training.site_calibration).

Opened from the main window's "Train…" action (`open_training_wizard(window)`),
it drives core.training.trainer.train, the code behind `pneumoscan-cli train`, on a
worker thread. Nothing is registered until the reader saves on the last page;
then `modelRegistered(label)` fires, and `modelActivated(label)` as well for
"Save and make active".
"""
from __future__ import annotations

import weakref
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QWizard

from desktop.wizard.calibration_page import CalibrationPage
from desktop.wizard.data_page import CALIBRATE, TRAIN, DataPage
from desktop.wizard.results_page import ResultsPage
from desktop.wizard.settings_page import SettingsPage
from desktop.wizard.training_page import TrainingPage

__all__ = ["TrainingWizard", "open_training_wizard", "open_site_calibration"]



def _resolve_model(current_model):
    """A ModelEntry from an entry, a name/label, or None (unknown names: no fine-tuning)."""
    if current_model is None or not isinstance(current_model, str):
        return current_model
    from core.models.registry import ModelError, find_model

    try:
        return find_model(current_model)
    except ModelError:
        return None


class TrainingWizard(QWizard):
    modelRegistered = Signal(str)  # "name vN" of a newly saved model
    modelActivated = Signal(str)  # the same, when saved with "Save and make active"

    def __init__(self, parent=None, store=None, study_folder=None, current_model=None, mode: str = TRAIN):
        super().__init__(parent)
        self.setWindowTitle(("Calibrate to my site" if mode == CALIBRATE else "Train a model")
                            + " - PneumoScan (research use only)")
        self.setWizardStyle(QWizard.WizardStyle.ClassicStyle)  # same look on every platform
        self.setOption(QWizard.WizardOption.NoBackButtonOnLastPage, False)
        self.resize(860, 680)
        self.study_folder = Path(study_folder) if study_folder else None
        self.current_model = _resolve_model(current_model)
        self.activate_requested = False
        self.saved_entry = None
        self.calibration_page_id = -1  # set once its page is added (Qt asks nextId while pages are added)

        self.data_page = DataPage(self.study_folder, store, self, mode=mode)
        self.settings_page = SettingsPage(self.current_model, self)
        self.training_page = TrainingPage(self)
        self.results_page = ResultsPage(self.current_model, self)
        self.calibration_page = CalibrationPage(self.current_model, self)
        for page in (self.data_page, self.settings_page, self.training_page, self.results_page):
            self.addPage(page)
        self.calibration_page_id = self.addPage(self.calibration_page)
        self.results_page.saved.connect(self._on_saved)
        self.calibration_page.saved.connect(self._on_saved)

    def build_config(self):
        """The TrainConfig of the current data and settings choices."""
        return self.settings_page.config(self.data_page.folder, self.data_page.extra_samples(),
                                         self.study_folder)

    def _on_saved(self, entry, activate: bool) -> None:
        self.saved_entry = entry
        self.activate_requested = activate
        self.modelRegistered.emit(entry.label)
        if activate:
            self.modelActivated.emit(entry.label)

    def done(self, result: int) -> None:
        """Closing (Finish, Cancel, Esc, the window's X) cancels every worker; none
        reports to the closed wizard again."""
        self.data_page.cleanup()
        self.training_page.discard()
        self.results_page.cleanup()
        self.calibration_page.cleanup()
        from desktop.training_worker import release_jobs

        # Never waits: running jobs are cancelled, detached and end on their own
        # (an abandoned run's checkpoints are removed when its job ends).
        release_jobs(self)
        super().done(result)


def open_training_wizard(window, calibrate: bool = False) -> TrainingWizard:
    """Open the wizard for the main window (called by MainWindow.open_training_wizard).

    Uses the window's open study, selected model and results store, and makes
    a saved model appear in (and, if asked, selected in) its model list.
    `calibrate=True` starts on the "Calibrate to my site" path.
    """
    wizard = TrainingWizard(window, store=window.store_path, study_folder=window.study_folder,
                            current_model=window.current_entry,
                            mode=CALIBRATE if calibrate else TRAIN)
    wizard.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    # The wizard's connections must not own its parent window: if they held the
    # last reference, freeing them while the wizard is deleted would delete the
    # window (and the wizard again) from inside the wizard's destructor.
    window_ref = weakref.ref(window)

    def registered(_label: str) -> None:
        target = window_ref()
        if target is not None:
            target.refresh_models()

    def activated(label: str) -> None:
        target = window_ref()
        if target is not None:
            target.select_model(label)

    wizard.modelRegistered.connect(registered)
    wizard.modelActivated.connect(activated)
    wizard.show()
    return wizard


def open_site_calibration(window) -> TrainingWizard:
    """The wizard on its "Calibrate to my site" path (for a menu action of its own)."""
    return open_training_wizard(window, calibrate=True)
