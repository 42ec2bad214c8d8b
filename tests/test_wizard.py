"""Training wizard end to end on a tiny labelled folder: train, compare, save
(too few validation images to make it active); fine-tune the current model; cancel midway leaves nothing behind.

Tiny on purpose (15 images per class, 32-48 px, 1-2 epochs): the machine has
two cores shared with background training.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import copy_small_study
from core.training.metrics import format_with_ci
from desktop.training_worker import _live_jobs
from desktop.wizard import open_training_wizard
from wizard_helpers import (CURRENT_MODEL_NAME, TRAIN_TIMEOUT_MS, StubMainWindow, choose_settings,
                            save_current_model)

pytestmark = pytest.mark.slow

PER_CLASS = 15


@pytest.fixture
def current_entry(home):
    return save_current_model(home)


@pytest.fixture
def study(tmp_path, train_dir):
    return copy_small_study(tmp_path / "study", per_class=PER_CLASS)


def hold_training_in_a_report(monkeypatch):
    """The wizard's next training run blocks in its first batch report until `release` is set;
    `held` is set once it is blocked there."""
    import threading

    from desktop.wizard import training_page

    held, release = threading.Event(), threading.Event()
    original = training_page.run_training

    def held_run(config):
        job = original(config)

        def run(report, cancel):
            def blocking(payload):
                report(payload)
                if payload[0] == "batch" and not release.is_set():
                    held.set()
                    release.wait(120)
            return job(blocking, cancel)
        return run

    monkeypatch.setattr(training_page, "run_training", held_run)
    return held, release


def user_labels():
    from core.models.registry import list_models

    return sorted(e.label for e in list_models() if not e.shipped)


def open_for(qtbot, study, current_entry):
    window = StubMainWindow(study_folder=study, current_entry=current_entry)
    qtbot.addWidget(window)
    wizard = open_training_wizard(window)
    wizard.data_page.set_sources(folder=str(study))
    qtbot.waitUntil(wizard.data_page.isComplete, timeout=60_000)
    wizard.next()
    assert wizard.currentPage() is wizard.settings_page
    return window, wizard


def test_train_compare_and_save(qtbot, study, current_entry):
    from core.models.registry import find_model, list_models, load_model, next_version
    from core.screening.screener import Screener

    window, wizard = open_for(qtbot, study, current_entry)
    page = wizard.settings_page
    assert page.init == "current"  # a current model exists: fine-tuning is the default
    choose_settings(page, init="random", input_size=32, epochs=2)
    assert page.isComplete()
    wizard.next()
    training = wizard.training_page
    qtbot.waitUntil(training.isComplete, timeout=TRAIN_TIMEOUT_MS)
    assert training.error is None
    assert training.curves.epochs == [1, 2]  # the plot followed every epoch
    assert training.curves.batch_x  # ...and the running loss
    assert user_labels() == [f"{CURRENT_MODEL_NAME} v1"]  # nothing saved yet

    wizard.next()
    results = wizard.results_page
    outcome = training.outcome
    assert results.threshold == outcome.card.threshold  # the validation choice, exactly
    # The current model (48 px) runs on the same validation images as the new one (32 px).
    qtbot.waitUntil(lambda: results.current_probs is not None, timeout=120_000)
    assert len(results.current_probs) == len(outcome.val_paths)
    assert not np.isnan(results.current_probs).any()
    # Every metric with its 95% interval; the current model at the same rule as the new one.
    assert "95% CI" in results.table.item(1, results.CURRENT_RULE).text()  # current model's sensitivity

    results.picker.set_value(0.9)  # live update of the numbers
    expected = results.new_metrics()
    assert results.table.item(0, results.NEW_PICKED).text() == f"{0.9:.4g}"
    assert results.table.item(1, results.NEW_PICKED).text() == format_with_ci(
        expected["sensitivity"], expected["ci95"]["sensitivity"])
    assert results.name_edit.text() == "custom_cnn"
    assert f"custom_cnn v{next_version('custom_cnn')}" in results.version_label.text()  # after any shipped one
    results.name_edit.setText("wizard test")
    assert not wizard.button(wizard.WizardButton.FinishButton).isEnabled()

    # A handful of validation images cannot justify making a model active: off, and why.
    assert not results.save_active_button.isEnabled() and results.save_button.isEnabled()
    assert "more pneumonia images" in results.activation_label.text()
    with qtbot.waitSignal(wizard.modelRegistered, timeout=60_000):
        results.save_button.click()
    assert not wizard.activate_requested and window.selected == []
    assert window.refreshed == 1
    assert user_labels() == [f"{CURRENT_MODEL_NAME} v1", "wizard test v1"]
    assert results.isComplete() and not results.save_button.isEnabled()

    entry = find_model("wizard test v1")
    assert entry.card.threshold == pytest.approx(0.9)
    assert entry.card.input_size == 32 and entry.card.architecture == "custom_cnn"
    assert entry.card.created and "desktop training wizard" in entry.card.training_command
    assert entry.card.validation_metrics["threshold"] == pytest.approx(0.9)
    results_probs = [r.probability for r in Screener(load_model(entry)).screen(outcome.val_paths[:4])]
    assert all(p is not None and 0.0 <= p <= 1.0 for p in results_probs)
    assert any(e.label == "wizard test v1" and not e.shipped for e in list_models())
    wizard.accept()


def test_fine_tune_the_current_model_and_save(qtbot, study, current_entry):
    from core.models.registry import find_model

    window, wizard = open_for(qtbot, study, current_entry)
    page = wizard.settings_page
    choose_settings(page, init="current", epochs=1)
    assert page.size_spin.value() == 48 and not page.size_spin.isEnabled()  # kept from the base
    assert page.lr_spin.value() == pytest.approx(1e-4)
    assert wizard.build_config().init == str(current_entry.keras_path)
    wizard.next()
    qtbot.waitUntil(wizard.training_page.isComplete, timeout=TRAIN_TIMEOUT_MS)
    wizard.next()
    results = wizard.results_page
    assert results.name_edit.text() == CURRENT_MODEL_NAME  # a new version of the same model
    with qtbot.waitSignal(wizard.modelRegistered, timeout=60_000) as registered:
        results.save_button.click()
    assert registered.args == [f"{CURRENT_MODEL_NAME} v2"]
    assert window.selected == [] and not wizard.activate_requested
    card = find_model(CURRENT_MODEL_NAME).card
    assert (card.version, card.input_size, card.architecture) == (2, 48, "custom_cnn")
    assert card.training_data["init"] == str(current_entry.keras_path)
    wizard.accept()


def test_cancel_midway_registers_nothing_and_keeps_the_active_model(qtbot, study, current_entry, monkeypatch):
    from core import paths

    before = user_labels()
    files_before = sorted(p.name for p in paths.user_models_dir().iterdir())
    window, wizard = open_for(qtbot, study, current_entry)
    # Many short batches, so training is still running when the Stop click is handled.
    choose_settings(wizard.settings_page, init="random", input_size=32, epochs=20, batch_size=4)
    wizard.next()
    training = wizard.training_page
    stopped = []

    def stop_on_first_batch(payload):
        if payload[0] == "batch" and not stopped:
            stopped.append(payload)
            training.stop_button.click()

    training.job.progress.connect(stop_on_first_batch)
    qtbot.waitUntil(lambda: training.was_cancelled, timeout=TRAIN_TIMEOUT_MS)
    assert stopped and len(training.curves.epochs) < 20  # stopped midway
    assert training.outcome is None and not training.isComplete()
    assert "nothing was saved" in training.status_label.text()
    assert user_labels() == before
    assert sorted(p.name for p in paths.user_models_dir().iterdir()) == files_before
    assert window.selected == [] and window.refreshed == 0
    # The cancelled run's checkpoints are removed too (the wizard cannot resume them).
    qtbot.waitUntil(lambda: not Path(training.config.run_dir).exists(), timeout=10_000)

    # Back, Next: a fresh run; closing the wizard mid-run stops it before the dialog goes.
    # The run is held inside a batch report, so "closing did not wait" needs no clock.
    held, release = hold_training_in_a_report(monkeypatch)
    wizard.back()
    wizard.next()
    assert training.is_running and not training.was_cancelled
    assert held.wait(TRAIN_TIMEOUT_MS / 1000)  # the worker is blocked in its batch report
    second_run = Path(training.config.run_dir)
    wizard.reject()  # returns while the worker is still blocked
    assert _live_jobs and not release.is_set()
    release.set()
    qtbot.waitUntil(lambda: not _live_jobs, timeout=TRAIN_TIMEOUT_MS)  # the worker ends on its own
    assert user_labels() == before and window.selected == []
    qtbot.waitUntil(lambda: not second_run.exists(), timeout=10_000)
