"""Training: patient-grouped split, cached decode, tf.data with augmentation,
class weighting, per-epoch validation AUROC, checkpoints that survive a
session's end (`resume`), and a threshold chosen for a target sensitivity.

Used by `pneumoscan-cli train` and by the desktop wizard (through the
progress callbacks and the cancel event). `train` never writes to the model
registry: the caller decides whether to save the outcome.
"""
from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from core import dataset as ds_mod
from core.dataset import CLASSES, Sample
from core.loader import ImageLoadError
from core.metrics import binary_metrics, storable_threshold, threshold_for_sensitivity
from core.preprocessing import load_for_model, to_uint8
from core.screening import compile_forward

MIN_PER_CLASS = 10


class TrainingError(Exception):
    """Training cannot start or go on (too few images, bad settings...)."""


class TrainingCancelled(Exception):
    """The user cancelled; nothing was saved to the registry."""


@dataclass
class TrainConfig:
    folder: str | None
    arch: str = "custom_cnn"
    name: str = "custom_cnn"
    epochs: int = 20
    batch_size: int = 32
    lr: float = 1e-3
    val_fraction: float = 0.15
    seed: int = 0
    init: str = "random"  # random | imagenet | a registered model name or .keras path
    target_sensitivity: float = 0.97
    input_size: int = 224
    augment: bool = True
    class_weighting: bool = True
    patience: int = 6
    weight_decay: float = 1e-4
    extra_samples: list = field(default_factory=list)  # [(path, label)] e.g. reader decisions
    run_dir: str | None = None
    command: str = ""  # the exact command, recorded in the card


@dataclass
class TrainOutcome:
    keras_model: object
    card: object  # core.registry.ModelCard, not yet saved
    val_labels: np.ndarray
    val_probs: np.ndarray
    val_paths: list
    history: list
    run_dir: Path
    unreadable: list  # [(path, message)]


BatchCallback = Callable[[int, int, int, dict], None]  # epoch, batch, steps, logs
EpochCallback = Callable[[int, dict], None]  # epoch, logs (loss, val_loss, val_auroc, ...)


# ---------------------------------------------------------------- data
def collect_samples(config: TrainConfig) -> list[Sample]:
    samples = ds_mod.labelled_samples(config.folder) if config.folder else []
    for path, label in config.extra_samples:
        samples.append(Sample(str(path), label, ds_mod.patient_id(path)))
    return samples


def check_class_minimum(samples: list[Sample]) -> None:
    counts = ds_mod.class_counts(samples)
    short = [f"{c}: {n}" for c, n in counts.items() if n < MIN_PER_CLASS]
    if short:
        raise TrainingError(
            f"at least {MIN_PER_CLASS} readable images per class are needed to train and "
            f"validate honestly; found {', '.join(short)}")


def decode_samples(samples: list[Sample], size: int, cancel: threading.Event | None = None,
                   workers: int = 2) -> tuple[np.ndarray, list[Sample], list]:
    """Decode + resize once into a uint8 cache (5k images at 224 is ~260 MB)."""
    def one(sample):
        if cancel is not None and cancel.is_set():
            return None
        try:
            image, _ = load_for_model(sample.path, size)
            return to_uint8(image)
        except ImageLoadError as exc:
            return exc

    with ThreadPoolExecutor(workers) as pool:
        decoded = list(pool.map(one, samples))
    if cancel is not None and cancel.is_set():
        raise TrainingCancelled()
    kept, arrays, unreadable = [], [], []
    for sample, item in zip(samples, decoded):
        if isinstance(item, ImageLoadError):
            unreadable.append((sample.path, item.message))
        else:
            kept.append(sample)
            arrays.append(item)
    cache = np.stack(arrays) if arrays else np.zeros((0, size, size, 1), np.uint8)
    return cache, kept, unreadable


def augmenter(seed: int):
    """Augmentation suited to chest X-rays, applied to [0, 1] batches.

    Small rotations, shifts and zoom mimic positioning; brightness and
    contrast mimic exposure. No horizontal flip: the heart sits on the left,
    and a mirrored chest is an image no scanner produces (dextrocardia aside),
    so flipping would teach the model anatomy that does not exist.
    """
    import keras
    from keras import layers

    return keras.Sequential([
        layers.RandomRotation(0.025, fill_mode="constant", seed=seed),  # about +-9 degrees
        layers.RandomTranslation(0.06, 0.06, fill_mode="constant", seed=seed + 1),
        layers.RandomZoom((-0.1, 0.1), fill_mode="constant", seed=seed + 2),
        layers.RandomBrightness(0.1, value_range=(0.0, 1.0), seed=seed + 3),
        layers.RandomContrast(0.2, seed=seed + 4),
    ], name="augmentation")


def make_train_dataset(cache: np.ndarray, targets: np.ndarray, config: TrainConfig):
    import tensorflow as tf

    aug = augmenter(config.seed) if config.augment else None

    def to_float(x, y):
        x = tf.cast(x, tf.float32) / 255.0  # the cache's uint8 -> the model's [0, 1]
        if aug is not None:
            x = tf.clip_by_value(aug(x, training=True), 0.0, 1.0)
        return x, y

    data = tf.data.Dataset.from_tensor_slices((cache, targets.astype("float32")[:, None]))
    data = data.shuffle(len(cache), seed=config.seed, reshuffle_each_iteration=True)
    data = data.batch(config.batch_size).map(to_float, num_parallel_calls=tf.data.AUTOTUNE)
    return data.prefetch(tf.data.AUTOTUNE)


def predict_cache(forward, cache: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Probabilities for the uint8 cache; `forward` is core.screening.compile_forward(model),
    the same compiled pass screening uses, traced once per model (not once per epoch)."""
    out = [forward(cache[start:start + batch_size].astype(np.float32) / 255.0)
           for start in range(0, len(cache), batch_size)]
    return np.concatenate(out) if out else np.zeros(0)


def class_weights(targets: np.ndarray) -> dict[int, float]:
    """Balanced weights (n / (2 * n_class)) for the ~1:3 normal:pneumonia imbalance."""
    from sklearn.utils.class_weight import compute_class_weight

    weights = compute_class_weight("balanced", classes=np.array([0, 1]), y=targets)
    return {0: float(weights[0]), 1: float(weights[1])}


# ---------------------------------------------------------------- run folder
def _atomic_json(path: Path, data) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def _atomic_save(model, path: Path) -> None:
    tmp = path.with_name(".tmp-" + path.name)
    model.save(tmp)
    os.replace(tmp, path)


def new_run_dir(config: TrainConfig) -> Path:
    from core import paths

    stamp = time.strftime("%Y%m%d-%H%M%S")
    run = Path(config.run_dir) if config.run_dir else paths.training_runs_dir() / f"{config.name}-{stamp}"
    run.mkdir(parents=True, exist_ok=True)
    return run


def load_run_config(run_dir: str | Path) -> TrainConfig:
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise TrainingError(f"{run_dir} is not a training run folder (no config.json)")
    data = json.loads(path.read_text(encoding="utf-8"))
    config = TrainConfig(**data)
    config.run_dir = str(run_dir)
    return config


# ---------------------------------------------------------------- model
def build_for_training(config: TrainConfig):
    """Fresh model (random / ImageNet) or an existing registered model to fine-tune."""
    from core.models import INIT_IMAGENET, INIT_RANDOM, build_model

    if config.init in (INIT_RANDOM, INIT_IMAGENET, None):
        return build_model(config.arch, config.input_size, config.init or INIT_RANDOM)
    from core.registry import load_model

    base = load_model(config.init)
    if base.card.architecture != config.arch or base.card.input_size != config.input_size:
        config.arch, config.input_size = base.card.architecture, base.card.input_size
    return base.keras_model


SMALL_RUN_STEPS = 50  # steps per epoch below which BatchNorm statistics need help


def adapt_batchnorm(model, steps_per_epoch: int) -> None:
    """Faster-moving BatchNorm statistics for small data (e.g. a reader's corrections).

    With momentum 0.99 the moving statistics need a few hundred steps to settle;
    a run of a few steps an epoch would validate (and ship) a model whose
    inference-time normalisation is still that of its initialisation.
    """
    if steps_per_epoch >= SMALL_RUN_STEPS:
        return
    import keras

    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = min(layer.momentum, 0.9)


def compile_for_training(model, config: TrainConfig, steps_per_epoch: int) -> None:
    import keras

    adapt_batchnorm(model, steps_per_epoch)

    total = max(1, config.epochs * steps_per_epoch)
    warmup = min(steps_per_epoch, total // 4)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.lr * 0.1, decay_steps=max(1, total - warmup),
        alpha=0.01, warmup_target=config.lr, warmup_steps=warmup)
    optimizer = keras.optimizers.AdamW(learning_rate=schedule, weight_decay=config.weight_decay)
    model.compile(optimizer=optimizer, loss=keras.losses.BinaryCrossentropy())


def _make_monitor(config, run_dir, val_cache, val_targets, steps, state, on_batch, on_epoch, cancel):
    import keras
    from sklearn.metrics import log_loss, roc_auc_score

    class RunMonitor(keras.callbacks.Callback):
        """Validation AUROC, checkpoints, early stopping, progress and cancel, in that order."""

        cancelled = False

        def on_train_batch_end(self, batch, logs=None):
            if on_batch is not None:
                on_batch(self.epoch, batch + 1, steps, dict(logs or {}))
            if cancel is not None and cancel.is_set():
                self.cancelled = True
                self.model.stop_training = True

        def on_train_begin(self, logs=None):
            self.forward = compile_forward(self.model)

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch
            self.started = time.monotonic()

        def on_epoch_end(self, epoch, logs=None):
            if self.cancelled:
                return  # a partial epoch is neither validated nor checkpointed
            logs = logs if logs is not None else {}
            probs = predict_cache(self.forward, val_cache)
            logs["val_loss"] = float(log_loss(val_targets, np.clip(probs, 1e-7, 1 - 1e-7), labels=[0, 1]))
            logs["val_auroc"] = float(roc_auc_score(val_targets, probs))
            lr = self.model.optimizer.learning_rate
            logs["lr"] = float(lr.numpy() if hasattr(lr, "numpy") else lr)
            logs["seconds"] = time.monotonic() - self.started
            record = {"epoch": epoch + 1, **{k: float(v) for k, v in logs.items()}}
            state["history"].append(record)
            improved = logs["val_auroc"] > state["best_auroc"] + 1e-4
            if improved:
                state.update(best_auroc=logs["val_auroc"], best_epoch=epoch + 1, stale_epochs=0)
                _atomic_save(self.model, run_dir / "best.keras")
            else:
                state["stale_epochs"] += 1
            state["epoch"] = epoch + 1
            _atomic_save(self.model, run_dir / "last.keras")  # with optimizer state
            _atomic_json(run_dir / "state.json", state)
            if on_epoch is not None:
                on_epoch(epoch + 1, record)
            if state["stale_epochs"] >= config.patience:
                self.model.stop_training = True

    return RunMonitor()


# ---------------------------------------------------------------- entry point
def train(config: TrainConfig, on_batch: BatchCallback | None = None,
          on_epoch: EpochCallback | None = None, cancel: threading.Event | None = None,
          resume: bool = False, log: Callable[[str], None] = lambda msg: None) -> TrainOutcome:
    """Train (or resume) a model; returns the best epoch's model and an unsaved card."""
    import keras

    from core.registry import ModelCard

    if config.arch not in ("mobilenet_v2", "custom_cnn"):
        raise TrainingError(f"unknown architecture {config.arch!r}")
    run_dir = Path(config.run_dir) if resume else new_run_dir(config)
    config.run_dir = str(run_dir)
    state_path = run_dir / "state.json"

    if resume:
        split = json.loads((run_dir / "split.json").read_text(encoding="utf-8"))
        train_s = [Sample(**s) for s in split["train"]]
        val_s = [Sample(**s) for s in split["val"]]
    else:
        samples = collect_samples(config)
        check_class_minimum(samples)
        train_s, val_s = ds_mod.grouped_split(samples, config.val_fraction, config.seed)
        _atomic_json(run_dir / "split.json", {"seed": config.seed, "val_fraction": config.val_fraction,
                                              "train": [dataclasses.asdict(s) for s in train_s],
                                              "val": [dataclasses.asdict(s) for s in val_s]})
        _atomic_json(run_dir / "config.json", dataclasses.asdict(config))

    log(f"decoding {len(train_s) + len(val_s)} images at {config.input_size}px ...")
    train_cache, train_s, bad_train = decode_samples(train_s, config.input_size, cancel)
    val_cache, val_s, bad_val = decode_samples(val_s, config.input_size, cancel)
    unreadable = bad_train + bad_val
    check_class_minimum(train_s)
    if len({s.label for s in val_s}) < 2:
        raise TrainingError("the validation split holds only one class; add images or raise --val-fraction")
    train_t = np.array([s.target for s in train_s])
    val_t = np.array([s.target for s in val_s])
    steps = int(np.ceil(len(train_s) / config.batch_size))

    if resume and (run_dir / "last.keras").is_file():
        state = json.loads(state_path.read_text(encoding="utf-8"))
        model = keras.models.load_model(run_dir / "last.keras", compile=True, safe_mode=True)
        log(f"resuming after epoch {state['epoch']} (best AUROC {state['best_auroc']:.4f})")
    else:
        state = {"epoch": 0, "best_auroc": -1.0, "best_epoch": 0, "stale_epochs": 0, "history": []}
        keras.utils.set_random_seed(config.seed)
        model = build_for_training(config)
        compile_for_training(model, config, steps)

    monitor = _make_monitor(config, run_dir, val_cache, val_t, steps, state, on_batch, on_epoch, cancel)
    if state["epoch"] < config.epochs and state["stale_epochs"] < config.patience:
        model.fit(make_train_dataset(train_cache, train_t, config), epochs=config.epochs,
                  initial_epoch=state["epoch"], callbacks=[monitor], verbose=0, shuffle=False,
                  class_weight=class_weights(train_t) if config.class_weighting else None)
    if monitor.cancelled:
        raise TrainingCancelled()
    if not (run_dir / "best.keras").is_file():
        raise TrainingError("training stopped before the first epoch finished; nothing to keep")

    best = keras.models.load_model(run_dir / "best.keras", compile=False, safe_mode=True)
    val_probs = predict_cache(compile_forward(best), val_cache)
    threshold = storable_threshold(threshold_for_sensitivity(val_t, val_probs, config.target_sensitivity))
    metrics = binary_metrics(val_t, val_probs, threshold)
    metrics["best_epoch"] = state["best_epoch"]
    card = ModelCard(
        name=config.name, architecture=config.arch, input_size=config.input_size,
        threshold=threshold, training_command=config.command,
        training_data=training_summary(config, train_s, val_s, unreadable),
        validation_metrics=metrics,
        notes=f"threshold chosen on validation for sensitivity >= {config.target_sensitivity}",
    )
    return TrainOutcome(best, card, val_t, val_probs, [s.path for s in val_s],
                        state["history"], run_dir, unreadable)


def training_summary(config: TrainConfig, train_s, val_s, unreadable) -> dict:
    return {
        "folder": str(config.folder) if config.folder else None,
        "extra_samples": len(config.extra_samples),
        "train_counts": ds_mod.class_counts(train_s),
        "val_counts": ds_mod.class_counts(val_s),
        "train_patients": len({s.patient for s in train_s}),
        "val_patients": len({s.patient for s in val_s}),
        "split": "stratified, grouped by patient",
        "split_seed": config.seed,
        "val_fraction": config.val_fraction,
        "unreadable": len(unreadable),
        "epochs": config.epochs, "batch_size": config.batch_size, "lr": config.lr,
        "init": config.init, "augment": config.augment, "class_weighting": config.class_weighting,
        "classes": list(CLASSES),
    }
