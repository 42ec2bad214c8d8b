"""The lung-focus penalty: masks that move with the film, the penalty on the exact CAM,
that it moves a model's evidence onto the lungs, and its cross-validation recipe."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import copy_small_study
from cv_helpers import cut_after_one_epoch
from core.training.augmentation import augment, augment_with_mask
from core.training.lung_focus import outside_share, penalty_value, training_mask, training_wrapper


def test_the_mask_moves_with_the_image_and_the_image_is_augmented_as_before():
    image = np.zeros((64, 64, 1), np.uint8)
    image[20:36, 30:46] = 255
    mask = (image[..., 0] > 0).astype(np.uint8)
    plain = augment(image, np.random.default_rng(7), "basic")
    paired, moved = augment_with_mask(image, mask, np.random.default_rng(7), "basic")
    assert np.array_equal(plain, paired)  # the same draws: a masked run sees the same stream
    bright = paired[..., 0] > paired[..., 0].mean()
    assert moved.shape == (64, 64) and moved.sum() > 0
    assert abs(np.argwhere(bright).mean(0) - np.argwhere(moved > 0.5).mean(0)).max() < 1.5


def test_each_cell_gets_its_share_outside_the_mask():
    mask = np.zeros((64, 64), np.uint8)
    mask[:, :32] = 1
    mask[:16, :32] = 0  # the top half of the top-left cell is outside
    assert np.allclose(outside_share(mask, 2), [[0.5, 1.0], [0.0, 1.0]])


def test_training_masks_keep_both_sides():
    """The estimate misses a consolidated (white) lung; the mirror brings that side back."""
    from core.models.lung_fields import estimate_lung_fields

    film = np.full((128, 128), 200, np.uint8)
    film[25:100, 18:56] = 60  # a dark right lung
    film[25:100, 72:110] = 210  # the left lung consolidated: as bright as soft tissue
    found, _ = estimate_lung_fields(film)
    mask = training_mask(film)
    assert found[60, 37] and not found[60, 90]  # the estimate alone finds one side
    assert np.array_equal(mask, mask[:, ::-1]) and mask[60, 90] and mask[60, 37]


def test_the_penalty_is_the_class_activation_map_outside_the_lungs():
    import keras

    from core.models.architectures import GRADCAM_LAYER, build_model

    base = build_model("custom_cnn", 32)
    wrapper = training_wrapper(base, 2.0)
    assert len(wrapper.trainable_weights) == len(base.trainable_weights) + 1  # shared, plus the offset
    images = np.random.default_rng(0).random((4, 32, 32, 1)).astype(np.float32)
    outside = np.random.default_rng(1).random((4, 2, 2)).astype(np.float32)
    features = keras.Model(base.input, base.get_layer(GRADCAM_LAYER).output)(images)
    kernel = base.layers[-1].kernel.numpy()
    penalty = wrapper.get_layer("lung_focus_penalty")
    wrapper({"image": images, "outside_lungs": outside})
    offset = float(penalty.offset())
    assert offset < 0
    assert float(sum(penalty.losses)) == pytest.approx(
        penalty_value(np.asarray(features), kernel, outside, 2.0, offset), rel=1e-4)
    assert len(wrapper.losses) == len(base.losses) + 1  # the weight decay terms, and the penalty once
    wrapper({"image": images, "outside_lungs": np.zeros_like(outside)})
    assert float(sum(penalty.losses)) == 0.0
    # The head is a mean of the CAM: the logit is bias + mean over cells (why the penalty is exact).
    cam = np.einsum("bhwc,c->bhw", np.asarray(features), kernel.reshape(-1))
    logit = cam.mean(axis=(1, 2)) + base.layers[-1].bias.numpy()[0]
    probability = np.asarray(base(images, training=False)).reshape(-1)
    assert np.allclose(1 / (1 + np.exp(-logit)), probability, atol=1e-5)


def _frame_or_lung_films(n: int, rng):
    """64 px films whose label sits both in a corner marker (outside the lungs) and, less
    clearly, in a central 'lung' patch: a model may learn either."""
    labels = np.arange(n) % 2
    films = rng.normal(0.4, 0.05, (n, 64, 64, 1))
    films[labels == 1, :12, :12] += 0.5  # the marker: perfectly predictive, outside
    films[labels == 1, 20:44, 20:44] += rng.normal(0.25, 0.05, (int(labels.sum()), 1, 1, 1))  # the finding
    return np.clip(films, 0, 1).astype(np.float32), labels.astype(np.float32)


def _evidence_share_outside(base, films, labels, outside):
    """Where the CAM tells the classes apart: |mean CAM of positives - of negatives| per cell,
    the share of it outside the lungs."""
    import keras

    from core.models.architectures import GRADCAM_LAYER

    features = np.asarray(keras.Model(base.input, base.get_layer(GRADCAM_LAYER).output)(films))
    cam = np.einsum("bhwc,c->bhw", features, base.layers[-1].kernel.numpy().reshape(-1))
    evidence = np.abs(cam[labels == 1].mean(0) - cam[labels == 0].mean(0))
    return float((evidence * outside[0]).sum() / evidence.sum())


def _small_cam_model():
    """The shape the penalty relies on (a Grad-CAM layer, global pooling, one sigmoid unit),
    small enough to train in seconds; 4x4 cells that each see only their own part of the film."""
    import keras
    from keras import layers

    from core.models.architectures import GRADCAM_LAYER

    image = keras.Input((64, 64, 1), name="image")
    x = layers.Conv2D(8, 4, strides=4, activation="relu")(image)
    x = layers.Conv2D(16, 4, strides=4, activation="relu", name=GRADCAM_LAYER)(x)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(image, layers.Dense(1, activation="sigmoid")(x), name="small")


def test_the_penalty_moves_the_evidence_from_the_frame_to_the_lungs():
    import keras

    films, labels = _frame_or_lung_films(192, np.random.default_rng(0))
    lungs = np.zeros((64, 64), np.uint8)
    lungs[16:48, 16:48] = 1
    outside = np.repeat(outside_share(lungs, 4)[None], len(films), axis=0)
    shares = {}
    for weight in (0.0, 0.3):
        keras.utils.set_random_seed(0)
        base = _small_cam_model()
        wrapper = training_wrapper(base, weight)
        wrapper.compile(optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy")
        wrapper.fit({"image": films, "outside_lungs": outside}, labels, epochs=30, batch_size=32, verbose=0)
        shares[weight] = _evidence_share_outside(base, films, labels, outside)
    assert shares[0.3] < 0.6 * shares[0.0], shares


@pytest.mark.slow
def test_the_lung_focus_recipe_trains_the_plain_model_and_resumes(tmp_path, monkeypatch):
    import keras

    from core.training.cross_validation import CVConfig, result_path, run_protocol

    folder = copy_small_study(tmp_path / "data", per_class=12)
    config = CVConfig(folder=str(folder), out_dir=str(tmp_path / "cv"), folds=2, epochs=2, input_size=32,
                      batch_size=8)
    cut_after_one_epoch(monkeypatch, config, ["lung_focus"], only_folds=[0])
    said = []
    written = run_protocol(config, ["lung_focus"], only_folds=[0], log=said.append)
    assert written == [result_path(config, "lung_focus", 0)]
    assert any("resuming after epoch 1" in m for m in said)
    result = json.loads(written[0].read_text())
    assert result["epochs"] == 2 and 0.0 <= result["auroc"] <= 1.0
    masks = np.load(tmp_path / "cv" / "lung_masks_32.npy")
    assert masks.shape[1:] == (32, 32) and np.array_equal(masks, masks[:, :, ::-1])
    saved = keras.models.load_model(tmp_path / "cv" / "runs" / "lung_focus-fold0" / "final.keras",
                                    compile=False, safe_mode=True)
    assert saved.name == "custom_cnn" and len(saved.inputs) == 1  # screening's model, no wrapper


@pytest.mark.slow
def test_training_with_lung_focus_keeps_the_plain_model_records_the_weight_and_resumes(tmp_path):
    import threading

    import keras

    from core.training.trainer import TrainConfig, TrainingCancelled, load_run_config, train

    folder = copy_small_study(tmp_path / "data", per_class=30)
    config = TrainConfig(folder=str(folder), arch="custom_cnn", name="focus", epochs=2, batch_size=16, lr=2e-3,
                         input_size=48, val_fraction=0.25, seed=0, patience=10, run_dir=str(tmp_path / "run"),
                         lung_focus=0.3)
    stop = threading.Event()
    said = []
    with pytest.raises(TrainingCancelled):
        train(config, on_epoch=lambda epoch, logs: stop.set(), cancel=stop, log=said.append)
    assert any("estimating the lung fields" in m for m in said)
    checkpoint = keras.models.load_model(tmp_path / "run" / "last.keras", compile=False, safe_mode=True)
    assert checkpoint.name == "custom_cnn" and len(checkpoint.inputs) == 1  # never the wrapper
    assert (tmp_path / "run" / "lung_masks_48.npy").is_file()
    resumed, said = [], []
    outcome = train(load_run_config(tmp_path / "run"), on_epoch=lambda e, logs: resumed.append(e), resume=True,
                    log=said.append)
    assert resumed == [2] and len(outcome.history) == 2
    assert not any("estimating the lung fields" in m for m in said)  # kept in the run folder
    assert outcome.card.training_data["lung_focus"] == 0.3
    assert len(outcome.keras_model.inputs) == 1


def test_the_command_line_takes_the_lung_focus_weight(tmp_path):
    import argparse

    from core.cli import train as train_command

    parser = argparse.ArgumentParser()
    train_command.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["train", str(tmp_path), "--lung-focus", "0.3"])
    assert train_command._config_from_args(args).lung_focus == 0.3
    assert train_command._config_from_args(parser.parse_args(["train", str(tmp_path)])).lung_focus == 0.0


def test_a_model_whose_head_the_penalty_cannot_read_is_refused_with_a_reason():
    import keras

    from core.training.fit_setup import model_to_fit
    from core.training.run_config import TrainingError

    def build():
        inputs = keras.Input((16, 16, 1))
        return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(inputs)))

    with pytest.raises(TrainingError, match="lung focus cannot be used"):
        model_to_fit(None, build, lambda m: None, seed=0, epochs_done=0, steps_per_epoch=1, lung_focus=0.3)


def test_kept_masks_are_reused_and_a_damaged_file_is_replaced(tmp_path):
    from core.training.lung_focus import cached_training_masks

    cache = np.zeros((2, 32, 32, 1), np.uint8)
    path = tmp_path / "lung_masks_32.npy"
    said = []
    first = cached_training_masks(tmp_path, cache, said.append)
    assert first.shape == (2, 32, 32) and path.is_file() and len(said) == 1
    assert np.array_equal(cached_training_masks(tmp_path, cache, said.append), first) and len(said) == 1  # reused
    path.write_bytes(path.read_bytes()[:40])  # cut short
    again = cached_training_masks(tmp_path, cache, said.append)
    assert np.array_equal(again, first) and "unreadable" in said[1]
    assert np.array_equal(np.load(path), first)
