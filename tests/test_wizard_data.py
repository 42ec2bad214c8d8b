"""Training wizard without training: data sources, readability, refusal, settings.

No TensorFlow here; these run in seconds (pytest-qt, off-screen).
"""
from __future__ import annotations

import pytest

from conftest import copy_small_study
from core.screening.results import AGREE, DISAGREE, NEGATIVE, POSITIVE, UNSURE
from core.reading.store import ResultStore
from core.training.trainer import MIN_PER_CLASS
from desktop.wizard import TrainingWizard
from core.formatting import format_duration
from core.training.data_sources import INIT_CURRENT, estimate_seconds

CHECK_TIMEOUT_MS = 60_000


def wait_checked(qtbot, wizard):
    qtbot.waitUntil(lambda: wizard.data_page.check is not None and wizard.data_page.job is None,
                    timeout=CHECK_TIMEOUT_MS)
    return wizard.data_page.check


def _decide(store, study, path, decision, ai_call):
    return store.record_decision(study, path, decision, ai_call=ai_call, model="m v1", model_hash="h",
                              probability=0.7 if ai_call == POSITIVE else 0.2, threshold=0.5)


def test_my_decisions_are_exactly_the_readers_confirmed_labels(qtbot, tmp_path, home, train_dir):
    study = copy_small_study(tmp_path / "study", per_class=4)
    files = sorted(str(p.resolve()) for p in study.rglob("*.jpeg"))
    store = ResultStore(tmp_path / "results.sqlite3")
    a, b, c, d, e, f, g = files[:7]
    _decide(store, study, a, AGREE, POSITIVE)  # -> PNEUMONIA
    _decide(store, study, b, DISAGREE, POSITIVE)  # -> NORMAL
    _decide(store, study, c, UNSURE, NEGATIVE)  # no label: left out
    _decide(store, study, d, AGREE, NEGATIVE)
    store.undo_decision(_decide(store, study, d, DISAGREE, NEGATIVE).id)  # undone: the agree stands
    store.undo_decision(_decide(store, study, e, AGREE, NEGATIVE).id)  # only an undone one: left out
    _decide(store, study, f, AGREE, NEGATIVE)
    _decide(store, study, f, DISAGREE, NEGATIVE)  # changed mind: the newest wins -> PNEUMONIA
    _decide(store, tmp_path / "another-study", g, AGREE, POSITIVE)  # another study: left out
    expected = sorted([(a, POSITIVE), (b, NEGATIVE), (d, NEGATIVE), (f, POSITIVE)])

    wizard = TrainingWizard(store=store, study_folder=study)
    qtbot.addWidget(wizard)
    wizard.data_page.set_sources(decisions=True)
    check = wait_checked(qtbot, wizard)

    assert wizard.data_page.sample_pairs() == expected
    assert wizard.data_page.extra_samples() == expected  # they go in as TrainConfig.extra_samples
    assert check.counts == {NEGATIVE: 2, POSITIVE: 2}
    # Four images cannot train a model: refused, and the page says why.
    assert not wizard.data_page.isComplete()
    assert str(MIN_PER_CLASS) in wizard.data_page.problem_label.text()
    wizard.close()
    store.close()


def test_folder_counts_patients_unreadable_files_and_the_class_minimum(qtbot, tmp_path, home, train_dir):
    folder = copy_small_study(tmp_path / "labelled", per_class=MIN_PER_CLASS + 1)
    (folder / "NORMAL" / "broken.jpeg").write_bytes(b"not a JPEG at all")
    (folder / "PNEUMONIA" / "cut.jpeg").write_bytes(
        next((folder / "PNEUMONIA").glob("person*.jpeg")).read_bytes()[:3000])  # truncated

    wizard = TrainingWizard()
    qtbot.addWidget(wizard)
    wizard.data_page.set_sources(folder=str(folder))
    check = wait_checked(qtbot, wizard)

    assert check.counts == {NEGATIVE: MIN_PER_CLASS + 1, POSITIVE: MIN_PER_CLASS + 1}
    assert check.patients[NEGATIVE] == MIN_PER_CLASS + 1  # one image per IM-xxxx patient
    assert 1 <= check.patients[POSITIVE] <= MIN_PER_CLASS + 1
    unreadable = dict(check.unreadable)
    assert set(unreadable) == {str(folder / "NORMAL" / "broken.jpeg"), str(folder / "PNEUMONIA" / "cut.jpeg")}
    assert all(reason for reason in unreadable.values())
    assert wizard.data_page.unreadable_list.count() == 2
    assert "cut.jpeg" in wizard.data_page.unreadable_list.item(1).text()
    assert wizard.data_page.isComplete()
    assert wizard.data_page.problem_label.text() == ""

    # Take one readable NORMAL image away: one short of the minimum -> refused.
    next((folder / "NORMAL").glob("IM-*.jpeg")).unlink()
    wizard.data_page.set_sources(folder=str(folder))
    check = wait_checked(qtbot, wizard)
    assert check.counts[NEGATIVE] == MIN_PER_CLASS
    sorted(folder.joinpath("NORMAL").glob("IM-*.jpeg"))[0].unlink()
    wizard.data_page.set_sources(folder=str(folder))
    wait_checked(qtbot, wizard)
    assert not wizard.data_page.isComplete()
    assert f"{NEGATIVE}: {MIN_PER_CLASS - 1}" in wizard.data_page.problem_label.text()
    wizard.close()


def test_decisions_on_folder_images_are_used_once_with_the_folder_label(qtbot, tmp_path, home, train_dir):
    folder = copy_small_study(tmp_path / "study", per_class=MIN_PER_CLASS)
    normal = str(sorted((folder / "NORMAL").iterdir())[0].resolve())
    store = ResultStore(tmp_path / "results.sqlite3")
    _decide(store, folder, normal, DISAGREE, NEGATIVE)  # the reader says pneumonia

    wizard = TrainingWizard(store=store, study_folder=folder)
    qtbot.addWidget(wizard)
    wizard.data_page.set_sources(folder=str(folder), decisions=True)
    check = wait_checked(qtbot, wizard)
    assert wizard.data_page.extra_samples() == []
    assert len(wizard.data_page.sample_pairs()) == 2 * MIN_PER_CLASS
    assert check.collected.decisions_in_folder == 1 and check.collected.decisions_conflicting == 1
    assert "differ" in wizard.data_page.summary_label.text()
    wizard.close()
    store.close()


def test_settings_defaults_estimate_and_imagenet_availability(qtbot, tmp_path, home, monkeypatch):
    monkeypatch.delenv("PNEUMOSCAN_IMAGENET_WEIGHTS", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-home"))
    wizard = TrainingWizard()
    qtbot.addWidget(wizard)
    page = wizard.settings_page
    imagenet = page.init_buttons["imagenet"]
    assert not imagenet.isEnabled() and "ImageNet weights" in imagenet.toolTip()
    assert not page.init_buttons[INIT_CURRENT].isEnabled()  # no current model
    assert (page.arch, page.epochs_spin.value(), page.batch_spin.value()) == ("custom_cnn", 15, 32)
    assert page.lr_spin.value() == pytest.approx(1e-3)
    assert page.size_spin.value() == 224

    page.data_images = 5216 * 2  # ~8,866 training images after a 15% validation hold-out
    page.epochs_spin.setValue(2)
    expected = estimate_seconds("custom_cnn", round(5216 * 2 * 0.85), 224, 2)
    assert expected == pytest.approx(2 * 140 * 2 * 0.85, rel=1e-3)
    assert format_duration(expected) in page.estimate_label.text()
    assert "Estimate" in page.estimate_label.text()
    page.size_spin.setValue(112)  # a quarter of the pixels: a quarter of the time
    assert format_duration(expected / 4) in page.estimate_label.text()

    weights = tmp_path / "keras-home" / "models"
    weights.mkdir(parents=True)
    (weights / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5").write_bytes(b"x")
    wizard2 = TrainingWizard()
    qtbot.addWidget(wizard2)
    page2 = wizard2.settings_page
    assert page2.init_buttons["imagenet"].isEnabled()
    page2.init_buttons["imagenet"].setChecked(True)
    assert page2.arch == "mobilenet_v2" and page2.lr_spin.value() == pytest.approx(1e-4)


def test_a_training_error_is_shown_on_the_page_not_raised(qtbot, tmp_path, home, train_dir, monkeypatch):
    import core.training.trainer
    from core.models.registry import list_models
    from core.training.trainer import TrainingError

    def failing_train(config, **kwargs):
        raise TrainingError("the validation split holds only one class; add images")

    monkeypatch.setattr(core.training.trainer, "train", failing_train)
    folder = copy_small_study(tmp_path / "labelled", per_class=MIN_PER_CLASS)
    wizard = TrainingWizard()
    qtbot.addWidget(wizard)
    wizard.show()
    wizard.data_page.set_sources(folder=str(folder))
    wait_checked(qtbot, wizard)
    wizard.next()
    wizard.next()
    assert wizard.currentPage() is wizard.training_page
    qtbot.waitUntil(lambda: wizard.training_page.error is not None, timeout=CHECK_TIMEOUT_MS)
    assert "only one class" in wizard.training_page.error_label.text()
    assert not wizard.training_page.isComplete()
    assert [e for e in list_models() if not e.shipped] == []
    wizard.close()


def test_the_lung_focus_follows_the_current_models_recipe_and_reaches_the_command(qtbot, tmp_path, home):
    from types import SimpleNamespace

    def model(training_data):
        card = SimpleNamespace(architecture="custom_cnn", input_size=224, name="custom_cnn",
                               training_data=training_data)
        return SimpleNamespace(card=card, label="custom_cnn v9", keras_path=tmp_path / "custom_cnn.keras")

    for training_data, expected in (({"lung_focus": 0.3}, True), ({}, False), ({"lung_focus": "junk"}, False)):
        wizard = TrainingWizard(current_model=model(training_data))
        qtbot.addWidget(wizard)
        assert wizard.settings_page.lung_focus_check.isChecked() is expected
    page = wizard.settings_page
    assert page.config(str(tmp_path), []).lung_focus == 0.0
    assert "--lung-focus" not in page.config(str(tmp_path), []).command
    page.lung_focus_check.setChecked(True)
    config = page.config(str(tmp_path), [])
    assert config.lung_focus == pytest.approx(0.3)
    assert config.command.endswith("--lung-focus 0.3")
    own = TrainingWizard(current_model=model({"lung_focus": 1.0}))  # a retrain keeps the model's own weight
    qtbot.addWidget(own)
    assert own.settings_page.config(str(tmp_path), []).lung_focus == pytest.approx(1.0)
