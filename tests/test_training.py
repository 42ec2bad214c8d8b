"""Training API: learning happens, resume continues, cancel leaves nothing."""
import threading

import pytest

from conftest import copy_small_study
from core import paths
from core.registry import list_models
from core.training import TrainConfig, TrainingCancelled, TrainingError, load_run_config, train

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def small_study(tmp_path_factory, train_dir):
    return copy_small_study(tmp_path_factory.mktemp("study"), per_class=80)


def _config(folder, tmp_path, **kw):
    base = dict(folder=str(folder), arch="custom_cnn", name="smoke", epochs=6, batch_size=16,
                lr=2e-3, input_size=48, val_fraction=0.25, seed=0, patience=10,
                run_dir=str(tmp_path / "run"))
    base.update(kw)
    return TrainConfig(**base)


def test_training_learns_on_a_tiny_real_folder(small_study, tmp_path):
    epochs = []
    outcome = train(_config(small_study, tmp_path), on_epoch=lambda e, logs: epochs.append(logs))
    assert len(epochs) == 6
    assert epochs[-1]["loss"] < epochs[0]["loss"]
    assert min(e["val_loss"] for e in epochs[1:]) < epochs[0]["val_loss"]
    assert outcome.card.validation_metrics["auroc"] > 0.75  # chance is 0.5
    # The card's threshold reaches the target sensitivity on validation.
    predicted = outcome.val_probs >= outcome.card.threshold
    assert predicted[outcome.val_labels == 1].mean() >= 0.97
    # No patient is on both sides of the split recorded in the card.
    data = outcome.card.training_data
    assert data["split"] == "stratified, grouped by patient"
    assert sum(data["train_counts"].values()) + sum(data["val_counts"].values()) == 160


def test_resume_continues_from_the_last_checkpoint(small_study, tmp_path):
    stop_after_two = threading.Event()
    seen = []

    def on_epoch(epoch, logs):
        seen.append(epoch)
        if epoch == 2:
            stop_after_two.set()  # simulates the session ending after epoch 2

    with pytest.raises(TrainingCancelled):
        train(_config(small_study, tmp_path, epochs=4), on_epoch=on_epoch,
              on_batch=None, cancel=stop_after_two)
    config = load_run_config(tmp_path / "run")
    resumed = []
    outcome = train(config, on_epoch=lambda e, logs: resumed.append(e), resume=True)
    assert seen[:2] == [1, 2] and resumed[0] == 3 and resumed[-1] == 4
    assert len(outcome.history) == 4


def test_cancel_stops_within_a_batch_and_registers_nothing(small_study, tmp_path):
    cancel = threading.Event()
    batches = []

    def on_batch(epoch, batch, steps, logs):
        batches.append((epoch, batch))
        if len(batches) == 3:
            cancel.set()

    before = [e.label for e in list_models()]
    with pytest.raises(TrainingCancelled):
        train(_config(small_study, tmp_path), on_batch=on_batch, cancel=cancel)
    assert len(batches) == 3
    assert [e.label for e in list_models()] == before
    assert not any(paths.user_models_dir().iterdir())


def test_too_few_images_per_class_is_refused_with_a_reason(tmp_path, train_dir):
    folder = copy_small_study(tmp_path / "few", per_class=3)
    with pytest.raises(TrainingError, match="per class"):
        train(_config(folder, tmp_path))
