"""The wizard's honest evaluation: intervals on every number, both models at the same
rule, "make active" only with enough validation cases, images a model was trained on
named as such; and the "Calibrate to my site" path.

No training here: a TrainOutcome is built from a toy model and tiny PNGs, so each
test takes seconds on two busy cores.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from calibration_helpers import brightness_model, save_brightness_model, write_site_folder
from core.training.metrics import wilson_interval
from wizard_helpers import StubMainWindow


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return write_site_folder(tmp_path_factory.mktemp("site"))


@pytest.fixture(scope="module")
def small_site(tmp_path_factory):
    return write_site_folder(tmp_path_factory.mktemp("small"), positives=20, negatives=15, seed=1)


def fake_outcome(folder, run_dir, seed=0):
    """A finished training run as the results page receives it (no training needed)."""
    from core.training.dataset import labelled_samples
    from core.models.registry import ModelCard
    from core.training.trainer import TrainOutcome
    from core.training.comparison import rule_threshold

    samples = labelled_samples(folder)
    labels = np.array([s.target for s in samples])
    rng = np.random.default_rng(seed)
    probs = np.clip(labels * 0.45 + rng.random(len(labels)) * 0.55, 0, 1)
    card = ModelCard(name="new model", architecture="custom_cnn", input_size=32,
                     threshold=rule_threshold(labels, probs, 0.97), training_data={"folder": "elsewhere"})
    return TrainOutcome(brightness_model(), card, labels, probs, [s.path for s in samples], [], run_dir, [])


def results_for(qtbot, outcome, current_entry, folder):
    from core.training.trainer import TrainConfig
    from desktop.wizard import TrainingWizard

    wizard = TrainingWizard(current_model=current_entry)
    qtbot.addWidget(wizard)
    wizard.training_page.outcome = outcome
    wizard.training_page.config = TrainConfig(folder=str(folder), name="new model", target_sensitivity=0.97)
    results = wizard.results_page
    results.initializePage()
    qtbot.waitUntil(lambda: results.current_probs is not None, timeout=60_000)
    return wizard, results


def test_both_models_at_the_same_rule_with_intervals_and_training_images_named(qtbot, home, site, tmp_path):
    from core import paths
    from core.training.comparison import rule_threshold

    # The current model was trained on the very folder the comparison uses.
    current = save_brightness_model(paths.user_models_dir(), name="ward", training_folder=site)
    outcome = fake_outcome(site, tmp_path)
    wizard, results = results_for(qtbot, outcome, current, site)

    labels = outcome.val_labels
    expected_current = rule_threshold(labels, results.current_probs, 0.97)
    assert expected_current != pytest.approx(current.card.threshold)  # not its own threshold
    assert results.table.item(0, results.CURRENT_RULE).text() == f"{expected_current:.4g}"
    assert results.table.item(0, results.NEW_RULE).text() == f"{rule_threshold(labels, outcome.val_probs, 0.97):.4g}"
    for col in (results.NEW_RULE, results.CURRENT_RULE, results.NEW_PICKED):
        for row in range(1, 5):  # sensitivity, specificity, accuracy, AUROC
            assert "95% CI" in results.table.item(row, col).text()
    for metrics in (results.current_metrics(), results.new_rule_metrics()):
        assert metrics["sensitivity"] >= 0.97
    assert f"At its own threshold {current.card.threshold:.4g}" in results.compare_label.text()
    text = results.overlap_label.text()
    assert "Not a fair comparison" in text and f"{len(labels)} of the validation images" in text

    # Enough validation cases: "Save and make active" is offered, and works.
    assert results.save_active_button.isEnabled() and not results.activation_label.text()
    with qtbot.waitSignals([wizard.modelRegistered, wizard.modelActivated], timeout=60_000):
        results.save_active_button.click()
    saved = results.saved_entry
    assert saved.card.validation_metrics["ci95"]["sensitivity"]  # the card carries the intervals too
    wizard.reject()


def test_make_active_needs_enough_validation_cases_and_says_why(qtbot, home, small_site, tmp_path):
    from core import paths

    current = save_brightness_model(paths.user_models_dir(), name="ward")  # no training folder known
    wizard, results = results_for(qtbot, fake_outcome(small_site, tmp_path), current, small_site)
    assert results.save_button.isEnabled() and not results.save_active_button.isEnabled()
    reason = results.activation_label.text()
    assert "41 more pneumonia images" in reason and "24 more normal images" in reason
    results.save(activate=True)  # a direct call cannot get round the rule
    assert results.save_job is None and results.saved_entry is None
    assert not results.overlap_label.text()
    wizard.reject()


def open_calibration(qtbot, folder, current):
    from desktop.wizard import open_site_calibration

    window = StubMainWindow(current_entry=current)
    qtbot.addWidget(window)
    wizard = open_site_calibration(window)
    wizard.data_page.set_sources(folder=str(folder))
    qtbot.waitUntil(wizard.data_page.isComplete, timeout=60_000)
    wizard.next()
    assert wizard.currentPage() is wizard.calibration_page
    return window, wizard, wizard.calibration_page


def test_calibrate_to_my_site_shows_roc_point_and_current_model_then_registers(qtbot, home, site):
    from core import paths
    from core.models.registry import find_model
    from core.training.site_calibration import calibrate_samples
    from core.training.dataset import labelled_samples

    base = save_brightness_model(paths.user_models_dir(), name="ward", training_folder=site)
    window, wizard, page = open_calibration(qtbot, site, base)
    qtbot.waitUntil(lambda: page.calibration is not None, timeout=120_000)
    _, expected = calibrate_samples(labelled_samples(site), "ward", 0.97)
    assert page.calibration.threshold == expected.threshold
    assert page.calibration.temperature == pytest.approx(expected.temperature)
    for col in (page.OWN, page.CHOSEN, page.CROSS_VALIDATED):
        assert "95% CI" in page.table.item(2, col).text()  # sensitivity
    assert page.table.item(0, page.OWN).text() == f"{base.card.threshold:.4g}"
    assert page.table.item(0, page.CHOSEN).text() == f"{expected.threshold:.4g}"
    legend = [t.get_text() for t in page.figure.ax.get_legend().get_texts()]
    assert any("its own threshold" in t for t in legend) and "chosen for this site" in legend
    assert "Careful" in page.overlap_label.text()  # the model was trained on these images

    page.target_spin.setValue(0.975)  # refit on a worker, without screening again
    qtbot.waitUntil(lambda: page.calibration is not None and page.calibration.target_sensitivity == 0.975,
                    timeout=60_000)
    assert not wizard.button(wizard.WizardButton.FinishButton).isEnabled()
    with qtbot.waitSignals([wizard.modelRegistered, wizard.modelActivated], timeout=60_000):
        page.register_active_button.click()
    assert window.selected == ["ward-site v1"]
    entry = find_model("ward-site")
    assert entry.card.sha256 == base.card.sha256 and entry.card.threshold == page.calibration.threshold
    assert entry.card.site_validation["target_sensitivity"] == 0.975
    assert str(site) in entry.card.site_validation["folder"]
    wizard.accept()


def test_calibration_refuses_too_few_images_with_how_many_more(qtbot, home, small_site):
    from core import paths

    base = save_brightness_model(paths.user_models_dir(), name="ward")
    window, wizard, page = open_calibration(qtbot, small_site, base)
    text = page.refusal_label.text()
    assert "Cannot calibrate" in text and "41 more pneumonia images" in text
    assert page.job is None  # refused before screening anything
    assert not page.register_button.isEnabled() and not page.register_active_button.isEnabled()
    wizard.reject()


def test_calibrate_from_the_readers_decisions(qtbot, home, tmp_path):
    from core import paths
    from core.training.dataset import labelled_samples
    from core.models.registry import find_model
    from core.screening.results import AGREE, DISAGREE, NEGATIVE, POSITIVE
    from core.reading.store import ResultStore
    from desktop.wizard import open_site_calibration

    study = write_site_folder(tmp_path / "study", seed=3)
    store = ResultStore(tmp_path / "results.sqlite3")
    for i, sample in enumerate(labelled_samples(study)):
        # The reader confirms half of the AI calls and corrects the other half: the label is theirs.
        wrong_call = NEGATIVE if sample.label == POSITIVE else POSITIVE
        decision, ai_call = (AGREE, sample.label) if i % 2 else (DISAGREE, wrong_call)
        store.record_decision(study, sample.path, decision, ai_call=ai_call, model="m v1", model_hash="h",
                           probability=0.5, threshold=0.5)
    base = save_brightness_model(paths.user_models_dir(), name="ward", training_folder=study)
    window = StubMainWindow(study_folder=study, current_entry=base, store_path=store)
    qtbot.addWidget(window)
    wizard = open_site_calibration(window)
    wizard.data_page.set_sources(decisions=True)
    qtbot.waitUntil(wizard.data_page.isComplete, timeout=60_000)
    assert wizard.data_page.check.counts == {"NORMAL": 45, "PNEUMONIA": 70}
    wizard.next()
    page = wizard.calibration_page
    qtbot.waitUntil(lambda: page.calibration is not None, timeout=120_000)
    assert "Careful: 115 of these images" in page.overlap_label.text()  # checked by path
    with qtbot.waitSignal(wizard.modelRegistered, timeout=60_000):
        page.register_button.click()
    record = find_model("ward-site").card.site_validation
    assert "reader's decisions" in record["folder"] and record["counts"] == {"NORMAL": 45, "PNEUMONIA": 70}
    assert window.selected == []  # registered, not made active
    wizard.accept()
    store.close()


def test_a_saved_card_keeps_trainings_protocol_unless_the_threshold_moved(tmp_path, site):
    from core.training.comparison import card_for_saving

    outcome = fake_outcome(site, tmp_path)
    protocol = {"tp": 30, "fn": 1, "tn": 20, "fp": 4, "n": 55, "sensitivity": 30 / 31, "auroc": 0.9,
                "protocol": "validation halved by patient", "best_epoch": 3}
    outcome.card.validation_metrics = dict(protocol)
    kept = card_for_saving(outcome, "m", 1, outcome.card.threshold).validation_metrics
    assert kept["protocol"] == "validation halved by patient" and kept["tp"] == 30
    assert kept["ci95"]["sensitivity"] == list(wilson_interval(30, 31))
    moved = card_for_saving(outcome, "m", 1, 0.9).validation_metrics
    assert moved["threshold"] == pytest.approx(0.9) and "picked by the reader" in moved["protocol"]
    assert moved["n"] == len(outcome.val_labels) and moved["best_epoch"] == 3


def test_training_overlap_finds_images_inside_the_folder_and_copies_of_them(tmp_path, site):
    import os
    import shutil

    from core import paths
    from core.models.registry import ModelCard
    from core.training.comparison import training_overlap

    inside = sorted((site / "NORMAL").iterdir())[:3]
    elsewhere = tmp_path / "study"
    elsewhere.mkdir()
    copied = [Path(shutil.copy(p, elsewhere / p.name)) for p in sorted((site / "PNEUMONIA").iterdir())[:2]]
    unrelated = elsewhere / "unrelated.png"
    unrelated.write_bytes(b"not from the training folder")
    relative = os.path.relpath(site, paths.bundle_root())  # cards record it relative to the repository
    card = ModelCard(name="m", architecture="custom_cnn", training_data={"folder": relative})
    overlap = training_overlap(card, [str(p) for p in inside + copied + [unrelated]])
    assert (overlap.seen, overlap.total) == (5, 6)
    assert "5 of these images (6)" in overlap.sentence()
    assert training_overlap(ModelCard(name="m", architecture="x", training_data={"folder": "/nowhere"}), []) is None


def test_the_model_runs_on_a_worker_thread_not_the_gui_thread(qtbot, home, site, monkeypatch):
    import threading

    import core.training.site_calibration as site_calibration
    from core import paths

    threads = []
    real = site_calibration.screen_samples

    def recording(*args, **kwargs):
        threads.append(threading.current_thread())
        return real(*args, **kwargs)

    monkeypatch.setattr(site_calibration, "screen_samples", recording)
    base = save_brightness_model(paths.user_models_dir(), name="ward")
    window, wizard, page = open_calibration(qtbot, site, base)
    qtbot.waitUntil(lambda: page.calibration is not None, timeout=120_000)
    assert threads and threading.main_thread() not in threads
    wizard.reject()


def test_results_page_never_proposes_1_000_shows_its_whole_table_and_cancel_removes_the_run(
        qtbot, home, small_site, tmp_path, monkeypatch):
    """Issue 19, smaller items: scores crowded at 1 gave a proposal that read "1.000"; the table
    was clipped and the notes overlapped the charts; Cancel at Results left the run folder."""
    from core import paths
    from core.training.comparison import MAX_PROPOSED_THRESHOLD

    current = save_brightness_model(paths.user_models_dir(), name="ward")
    run_dir = paths.training_runs_dir() / "run-cancelled-at-results"
    run_dir.mkdir(parents=True)
    (run_dir / "best.keras").write_bytes(b"x" * 1024)
    outcome = fake_outcome(small_site, run_dir)
    outcome.val_probs = np.where(outcome.val_labels == 1, 0.99999, outcome.val_probs * 0.5)  # saturated
    outcome.card.threshold = 0.99998
    wizard, results = results_for(qtbot, outcome, current, small_site)
    wizard.resize(860, 680)
    wizard.show()
    qtbot.wait(50)
    assert results.threshold <= MAX_PROPOSED_THRESHOLD and f"{results.threshold:.3f}" != "1.000"
    rule = results.table.item(0, results.NEW_RULE).text()
    assert float(rule) <= MAX_PROPOSED_THRESHOLD
    table = results.table
    rows = sum(table.rowHeight(r) for r in range(table.rowCount()))
    assert table.viewport().height() >= rows  # every row in view
    figure = results.figure.geometry()
    for label in (results.rule_label, results.compare_label, results.activation_label):
        if label.isVisible() and label.text():
            assert not label.geometry().intersects(figure), label.text()[:40]
    wizard.reject()  # Cancel at Results, nothing saved: the run's folder goes
    qtbot.waitUntil(lambda: not run_dir.exists(), timeout=10_000)


def test_empty_training_charts_start_at_epoch_zero(qtbot):
    from desktop.wizard.plots import TrainingCurves

    curves = TrainingCurves()
    qtbot.addWidget(curves)
    for ax in (curves.loss_ax, curves.auroc_ax):
        assert ax.get_xlim()[0] >= 0  # no negative epochs before the first batch
