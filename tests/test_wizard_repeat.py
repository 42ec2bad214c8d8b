"""Issue 19 item 6: train -> results -> save, again and again in one process.

The app vanished (a segfault in a thread of the long-job pool) once in three runs
of "train, Next after training finished". This runs the whole path several times
with tiny images (48 px PNGs, 32 px model, one epoch) so a crash in that path, or
an error only a second or third run meets, shows up here; pytest's faulthandler
prints every thread's stack if the process dies. `PNEUMOSCAN_WIZARD_REPEATS`
raises the count for a soak run (the reproduction used 30).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from desktop.training_worker import _live_jobs
from desktop.wizard import open_training_wizard
from wizard_helpers import TRAIN_TIMEOUT_MS, StubMainWindow, choose_settings, save_current_model

pytestmark = pytest.mark.slow

REPEATS = int(os.environ.get("PNEUMOSCAN_WIZARD_REPEATS", "3"))
PER_CLASS = 18


def tiny_labelled_folder(root, per_class: int = 18, side: int = 48):
    """NORMAL/ and PNEUMONIA/ of small synthetic films (a bright blob marks pneumonia)."""
    import cv2

    rng = np.random.default_rng(7)
    for label in ("NORMAL", "PNEUMONIA"):
        folder = root / label
        folder.mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.normal(90, 20, (side, side)).clip(0, 255)
            if label == "PNEUMONIA":
                pixels[side // 4: side // 2, side // 4: side // 2] += 90
            cv2.imwrite(str(folder / f"person{i + (0 if label == 'NORMAL' else 500)}_{label.lower()}.png"),
                        pixels.clip(0, 255).astype(np.uint8))
    return root


def run_train_results_save(qtbot, folder, current_entry, name: str, save: bool = True):
    """One pass of the path the reader took: data, settings, train, Next, save, close.
    Returns the saved label, or (save=False: Cancel at Results) the run's folder."""
    window = StubMainWindow(study_folder=folder, current_entry=current_entry)
    qtbot.addWidget(window)
    wizard = open_training_wizard(window)
    wizard.data_page.set_sources(folder=str(folder))
    qtbot.waitUntil(wizard.data_page.isComplete, timeout=60_000)
    wizard.next()
    choose_settings(wizard.settings_page, init="random", input_size=32, epochs=1, batch_size=8)
    wizard.next()
    training = wizard.training_page
    qtbot.waitUntil(lambda: not training.is_running, timeout=TRAIN_TIMEOUT_MS)
    assert training.error is None and training.isComplete()
    wizard.next()  # the step that crashed: the results page starts scoring the current model
    results = wizard.results_page
    assert wizard.currentPage() is results
    qtbot.waitUntil(lambda: results.current_probs is not None, timeout=120_000)
    assert results.picker.value() <= 0.999  # never a proposal that reads as 1.000
    results.name_edit.setText(name)
    if not save:
        run_dir = Path(training.outcome.run_dir)
        assert run_dir.is_dir()
        wizard.reject()
        qtbot.waitUntil(lambda: not _live_jobs, timeout=60_000)
        return run_dir
    with qtbot.waitSignal(wizard.modelRegistered, timeout=60_000) as registered:
        results.save_button.click()
    wizard.accept()
    qtbot.waitUntil(lambda: not _live_jobs, timeout=60_000)  # every job has ended on its own
    return registered.args[0]


def test_train_results_save_repeatedly_then_cancel_at_results(qtbot, home, tmp_path):
    from core.models.registry import list_models

    folder = tiny_labelled_folder(tmp_path / "labelled")
    current = save_current_model(home, size=32)
    saved = [run_train_results_save(qtbot, folder, current, f"repeat {i}") for i in range(REPEATS)]
    assert saved == [f"repeat {i} v1" for i in range(REPEATS)]
    assert {f"repeat {i} v1" for i in range(REPEATS)} <= {e.label for e in list_models()}
    # Once more, but Cancel at Results: nothing registered, and the run's folder goes too.
    run_dir = run_train_results_save(qtbot, folder, current, "not saved", save=False)
    assert "not saved v1" not in {e.label for e in list_models()}
    qtbot.waitUntil(lambda: not run_dir.exists(), timeout=30_000)
