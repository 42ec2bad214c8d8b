"""Training: patient-grouped split, cached decode, tf.data with augmentation,
class weighting, per-epoch validation AUROC, checkpoints that survive a
session's end (`resume`), and a threshold chosen for a target sensitivity.

Used by `pneumoscan-cli train` and by the desktop wizard (through the
progress callbacks and the cancel event). `train` never writes to the model
registry: the caller decides whether to save the outcome. The work is split:
core.training.run_config (settings, outcome, run folder), core.training.batches
(decode, augmented batches, prediction), core.training.finalise (card, threshold,
scope check); the names callers use are re-exported here.
"""
from __future__ import annotations

import dataclasses
import json
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np

from core.training import dataset as ds_mod
from core.training.batches import (AugmentedBatches, class_weights, decode_samples, forward_for,  # noqa: F401
                                   make_train_dataset, mixup, predict_cache)
from core.training.dataset import Sample
from core.training.finalise import (finalise_outcome, finalise_run, rows_of, split_validation,  # noqa: F401
                                    training_summary)
from core.training.run_config import (MIN_PER_CLASS, BatchCallback, EpochCallback, TrainConfig,  # noqa: F401
                                      TrainingCancelled, TrainingError, TrainOutcome, atomic_json, atomic_save,
                                      load_run_config, new_run_dir)


# ---------------------------------------------------------------- data
def collect_samples(config: TrainConfig) -> list[Sample]:
    samples = ds_mod.labelled_samples(config.folder) if config.folder else []
    for path, label in config.extra_samples:
        samples.append(Sample(str(path), label, ds_mod.patient_id(path)))
    return samples


def check_class_minimum(samples: list[Sample], unreadable: list | None = None) -> None:
    """Enough images per class: before decoding (`unreadable` None) the labelled files are
    counted; after it, the training split's readable images, naming what could not be read."""
    counts = ds_mod.class_counts(samples)
    short = [f"{c}: {n}" for c, n in counts.items() if n < MIN_PER_CLASS]
    if not short:
        return
    if unreadable is None:
        what, why = "labelled images per class", ""
    else:
        what = "readable images per class in the training split"
        why = (f"; {len(unreadable)} image(s) could not be read (first: {unreadable[0][0]}: {unreadable[0][1]})"
               if unreadable else "")
    raise TrainingError(f"at least {MIN_PER_CLASS} {what} are needed to train and validate honestly; "
                        f"found {', '.join(short)}{why}")


# ---------------------------------------------------------------- model
def build_for_training(config: TrainConfig):
    """Fresh model (random / ImageNet) or an existing registered model to fine-tune."""
    from core.models.architectures import INIT_IMAGENET, INIT_RANDOM, build_model

    if config.init in (INIT_RANDOM, INIT_IMAGENET, None):
        return build_model(config.arch, config.input_size, config.init or INIT_RANDOM,
                           standardise=config.standardise)
    from core.models.registry import load_model

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

    for layer in _nested_layers(model):  # a training wrapper holds the model as a sub-model
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = min(layer.momentum, 0.9)


def _nested_layers(model):
    for layer in getattr(model, "layers", []):
        yield layer
        yield from _nested_layers(layer)


def compile_for_training(model, config: TrainConfig, steps_per_epoch: int, ema_momentum: float = 0.0) -> None:
    """AdamW on a warm-up + cosine schedule. `ema_momentum` > 0 (cross-validation candidates
    only): the optimizer keeps an EMA of the weights, which end of `fit` copies into the model."""
    import keras

    adapt_batchnorm(model, steps_per_epoch)

    total = max(1, config.epochs * steps_per_epoch)
    warmup = min(steps_per_epoch, total // 4)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.lr * 0.1, decay_steps=max(1, total - warmup),
        alpha=0.01, warmup_target=config.lr, warmup_steps=warmup)
    optimizer = keras.optimizers.AdamW(learning_rate=schedule, weight_decay=config.weight_decay,
                                       use_ema=ema_momentum > 0, ema_momentum=ema_momentum or 0.99)
    model.compile(optimizer=optimizer, loss=keras.losses.BinaryCrossentropy())
    # Label smoothing is applied to the targets by the data pipeline (AugmentedBatches).


def _make_monitor(config, run_dir, val_cache, val_targets, steps, state, on_batch, on_epoch, cancel, plain):
    """`plain`: the model validated and checkpointed (the fitted one may be a training wrapper)."""
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
            self.forward = forward_for(plain)

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
            logs["lr"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            logs["seconds"] = time.monotonic() - self.started
            record = {"epoch": epoch + 1, **{k: float(v) for k, v in logs.items()}}
            state["history"].append(record)
            improved = logs["val_auroc"] > state["best_auroc"] + 1e-4
            if improved:
                state.update(best_auroc=logs["val_auroc"], best_epoch=epoch + 1, stale_epochs=0)
                atomic_save(plain, run_dir / "best.keras")
            else:
                state["stale_epochs"] += 1
            state["epoch"] = epoch + 1
            # With the optimizer's state, except under lung focus (the optimizer is the wrapper's):
            # core.training.fit_setup gives a resume a new one then.
            atomic_save(plain, run_dir / "last.keras")
            atomic_json(run_dir / "state.json", state)
            if on_epoch is not None:
                on_epoch(epoch + 1, record)
            if state["stale_epochs"] >= config.patience:
                self.model.stop_training = True

    return RunMonitor()


def _record_new_length(config: TrainConfig, run_dir: Path, epochs_done: int, log) -> bool:
    """A resume asked for a different number of epochs (`train --resume RUN --epochs N`):
    the run's config and the command on its card say so; True when the schedule must be rebuilt."""
    saved = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    if saved.get("epochs") == config.epochs:
        return False
    if config.epochs <= epochs_done:
        raise TrainingError(f"the run has done {epochs_done} epochs already; --epochs must be more than that "
                            f"(or finalise it with: pneumoscan-cli train --finalise {run_dir})")
    log(f"planned length changed from {saved.get('epochs')} to {config.epochs} epochs: "
        "the learning-rate schedule is rebuilt from the step reached")
    config.command = (f"{config.command}; resumed after epoch {epochs_done} with --epochs {config.epochs} "
                      f"(planned {saved.get('epochs')})")
    atomic_json(run_dir / "config.json", dataclasses.asdict(config))
    return True


# ---------------------------------------------------------------- entry point
def train(config: TrainConfig, on_batch: BatchCallback | None = None,
          on_epoch: EpochCallback | None = None, cancel: threading.Event | None = None,
          resume: bool = False, log: Callable[[str], None] = lambda msg: None) -> TrainOutcome:
    """Train (or resume) a model; returns the best epoch's model and an unsaved card."""
    import keras

    from core.training.fit_setup import model_to_fit

    if config.arch not in ("mobilenet_v2", "custom_cnn"):
        raise TrainingError(f"unknown architecture {config.arch!r}")
    run_dir = Path(config.run_dir) if resume else new_run_dir(config)
    config.run_dir = str(run_dir)
    state_path = run_dir / "state.json"
    resuming = resume and (run_dir / "last.keras").is_file()
    new_schedule = False
    if resuming:
        state = json.loads(state_path.read_text(encoding="utf-8"))
        new_schedule = _record_new_length(config, run_dir, state["epoch"], log)
    else:
        state = {"epoch": 0, "best_auroc": -1.0, "best_epoch": 0, "stale_epochs": 0, "history": []}

    if resume:
        split = json.loads((run_dir / "split.json").read_text(encoding="utf-8"))
        train_s = [Sample(**s) for s in split["train"]]
        val_s = [Sample(**s) for s in split["val"]]
    else:
        samples = collect_samples(config)
        check_class_minimum(samples)
        train_s, val_s = ds_mod.grouped_split(samples, config.val_fraction, config.seed)
        atomic_json(run_dir / "split.json", {"seed": config.seed, "val_fraction": config.val_fraction,
                                              "train": [dataclasses.asdict(s) for s in train_s],
                                              "val": [dataclasses.asdict(s) for s in val_s]})
        atomic_json(run_dir / "config.json", dataclasses.asdict(config))

    log(f"decoding {len(train_s) + len(val_s)} images at {config.input_size}px ...")
    train_cache, train_s, bad_train = decode_samples(train_s, config.input_size, cancel)
    val_cache, val_s, bad_val = decode_samples(val_s, config.input_size, cancel)
    unreadable = bad_train + bad_val
    check_class_minimum(train_s, unreadable)
    if len({s.label for s in val_s}) < 2:
        raise TrainingError("the validation split holds only one class; add images or raise --val-fraction")
    select_s, _, _ = split_validation(val_s, config.seed)  # the best epoch is chosen on this part
    select_cache = rows_of(val_cache, val_s, select_s)
    select_t = np.array([s.target for s in select_s])
    train_t = np.array([s.target for s in train_s])
    steps = int(np.ceil(len(train_s) / config.batch_size))

    if resuming:
        log(f"resuming after epoch {state['epoch']} (best AUROC {state['best_auroc']:.4f})")
    model, fitted = model_to_fit(run_dir / "last.keras" if resuming else None, lambda: build_for_training(config),
                                 lambda m: compile_for_training(m, config, steps), config.seed, state["epoch"],
                                 steps, config.lung_focus, new_schedule)
    masks = grid = None
    if config.lung_focus:
        from core.training.lung_focus import cached_training_masks, cam_grid

        masks = cached_training_masks(run_dir, train_cache, log)
        grid = cam_grid(model)

    monitor = _make_monitor(config, run_dir, select_cache, select_t, steps, state, on_batch, on_epoch, cancel, model)
    if state["epoch"] < config.epochs and state["stale_epochs"] < config.patience:
        fitted.fit(make_train_dataset(train_cache, train_t, config, state["epoch"], masks=masks, grid=grid),
                   epochs=config.epochs, initial_epoch=state["epoch"], callbacks=[monitor], verbose=0, shuffle=False,
                   class_weight=class_weights(train_t) if config.class_weighting else None)
    if monitor.cancelled:
        raise TrainingCancelled()
    if not (run_dir / "best.keras").is_file():
        raise TrainingError("training stopped before the first epoch finished; nothing to keep")

    best = keras.models.load_model(run_dir / "best.keras", compile=False, safe_mode=True)
    return finalise_outcome(best, config, run_dir, state, train_s, train_cache, val_s, val_cache, unreadable, log)


