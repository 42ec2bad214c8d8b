"""Training API: learning happens, resume continues, cancel leaves nothing."""
import json
import threading
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from conftest import copy_small_study
from core import paths
from core.training.dataset import labelled_samples, patient_id
from core.training.metrics import binary_metrics
from core.models.registry import list_models
from core.training.trainer import TrainConfig, TrainingCancelled, TrainingError, load_run_config, train

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def small_study(tmp_path_factory, train_dir):
    return copy_small_study(tmp_path_factory.mktemp("study"), per_class=80)


@pytest.fixture(scope="module")
def held_out_study(tmp_path_factory, train_dir):
    """Images after the first 80 of each class: never seen by training, validation or threshold."""
    return copy_small_study(tmp_path_factory.mktemp("held_out"), per_class=40, offset=120)


def _config(folder, tmp_path, **kw):
    base = dict(folder=str(folder), arch="custom_cnn", name="smoke", epochs=6, batch_size=16,
                lr=2e-3, input_size=48, val_fraction=0.25, seed=0, patience=10,
                run_dir=str(tmp_path / "run"))
    base.update(kw)
    return TrainConfig(**base)


def _held_out_probabilities(outcome, folder):
    """Calibrated probabilities of the trained (unsaved) model on `folder`, as screening shows them."""
    from core.models.calibration import apply_temperature
    from core.screening.raw_scoring import raw_probabilities
    from core.models.registry import LoadedModel

    samples = labelled_samples(folder)
    raw, errors = raw_probabilities(LoadedModel(outcome.keras_model, outcome.card), [s.path for s in samples])
    assert not errors
    labels = np.array([s.target for s in samples])
    return labels, apply_temperature(raw, getattr(outcome.card, "temperature", 1.0))


def test_training_learns_on_a_tiny_real_folder(small_study, held_out_study, tmp_path):
    epochs = []
    outcome = train(_config(small_study, tmp_path), on_epoch=lambda e, logs: epochs.append(logs))
    assert len(epochs) == 6
    assert epochs[-1]["loss"] < epochs[0]["loss"]
    assert min(e["val_loss"] for e in epochs[1:]) < epochs[0]["val_loss"]
    assert outcome.card.validation_metrics["auroc"] > 0.75  # chance is 0.5

    # Judged on images nothing in training chose anything on (sensitivity on the
    # split the threshold was tuned on would reach the target by construction).
    labels, probs = _held_out_probabilities(outcome, held_out_study)
    held_out = binary_metrics(labels, probs, outcome.card.threshold)
    assert held_out["auroc"] > 0.75
    # Tuned for 97 % on ~16 validation positives: on 40 new ones it can miss a few, not a third.
    assert held_out["sensitivity"] >= 0.75

    # No patient is on both sides of the split the run actually used.
    split = json.loads((Path(outcome.run_dir) / "split.json").read_text(encoding="utf-8"))
    train_patients = {patient_id(s["path"]) for s in split["train"]}
    val_patients = {patient_id(p) for p in outcome.val_paths}
    assert train_patients and val_patients and not train_patients & val_patients
    per_patient = Counter(patient_id(s.path) for s in labelled_samples(small_study))
    assert max(per_patient.values()) >= 2  # several images per patient: grouping was needed
    held_out_patients = {patient_id(s.path) for s in labelled_samples(held_out_study)}
    assert not held_out_patients & (train_patients | val_patients)  # truly held out
    data = outcome.card.training_data
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


def test_a_resume_can_change_the_planned_length_and_the_card_says_so(small_study, tmp_path):
    stop = threading.Event()
    with pytest.raises(TrainingCancelled):
        train(_config(small_study, tmp_path, epochs=3, command="pneumoscan-cli train x --epochs 3"),
              on_epoch=lambda epoch, logs: stop.set(), cancel=stop)
    config = load_run_config(tmp_path / "run")
    config.epochs = 1  # not more than the one epoch done
    with pytest.raises(TrainingError, match="--epochs must be more than"):
        train(config, resume=True)
    config = load_run_config(tmp_path / "run")
    config.epochs = 2  # `train --resume RUN --epochs 2`: a shorter run than planned
    outcome = train(config, resume=True)
    assert len(outcome.history) == 2
    # The schedule was rebuilt for 2 epochs: it ends at its floor (1 % of the peak), where
    # the saved 3-epoch schedule would still be at about a quarter of it.
    assert outcome.history[-1]["lr"] == pytest.approx(config.lr * 0.01, rel=0.05)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["epochs"] == 2
    assert outcome.card.training_command.endswith("resumed after epoch 1 with --epochs 2 (planned 3)")


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


def test_files_that_cannot_be_read_are_named_when_they_leave_too_few(tmp_path, train_dir):
    """Counted before decoding, 16 NORMAL files pass; 6 of them are not images, and the
    refusal said "readable" of the files it had counted, naming none of them."""
    folder = copy_small_study(tmp_path / "some_broken", per_class=10)
    for i in range(6):
        (folder / "NORMAL" / f"broken_{i}.jpeg").write_bytes(b"not a picture")
    with pytest.raises(TrainingError, match=r"readable images per class in the training split .*"
                                            r"6 image\(s\) could not be read \(first: .*broken_\d\.jpeg: not an image file\)"):
        train(_config(folder, tmp_path))


def test_the_command_line_passes_a_new_length_to_a_resumed_run(tmp_path, monkeypatch):
    import argparse
    import dataclasses

    from core.cli import train as train_command
    from core.training import trainer
    from core.training.run_config import atomic_json

    atomic_json(tmp_path / "config.json", dataclasses.asdict(_config(tmp_path, tmp_path, epochs=30)))
    seen = []

    def fake_train(config, **kwargs):
        seen.append((config.epochs, kwargs["resume"]))
        raise TrainingError("stop here")

    monkeypatch.setattr(trainer, "train", fake_train)
    parser = argparse.ArgumentParser()
    train_command.register(parser.add_subparsers(dest="command"))
    for extra, epochs in (([], 30), (["--epochs", "12"], 12)):
        assert train_command.run(parser.parse_args(["train", "--resume", str(tmp_path), *extra])) == 2
        assert seen[-1] == (epochs, True)
    assert train_command.run(parser.parse_args(["train", "--resume", str(tmp_path), "--epochs", "0"])) == 2
    assert len(seen) == 2  # refused before training
