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

from core.training import dataset as ds_mod
from core.training.dataset import CLASSES, Sample
from core.imaging.loader import ImageLoadError
from core.training.metrics import binary_metrics, storable_threshold, threshold_for_sensitivity
from core.imaging.preprocessing import load_for_model, to_uint8
from core.screening.screener import compile_forward

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
    # v2 recipe: per-image percentile stretch in the graph, acquisition-shift augmentation.
    standardise: bool = True
    augment_level: str = "acquisition"  # none | basic | acquisition (core.training.augmentation)
    label_smoothing: float = 0.0
    class_weighting: bool = True
    patience: int = 6
    weight_decay: float = 1e-4
    extra_samples: list = field(default_factory=list)  # [(path, label)] e.g. reader decisions
    run_dir: str | None = None
    command: str = ""  # the exact command, recorded in the card


@dataclass
class TrainOutcome:
    keras_model: object
    card: object  # core.models.registry.ModelCard, not yet saved
    val_labels: np.ndarray
    val_probs: np.ndarray
    val_paths: list
    history: list
    run_dir: Path
    unreadable: list  # [(path, message)]
    scope_detector: object = None  # core.models.scope detector fitted on the training images, if any


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


class AugmentedBatches:
    """Factory for a keras.utils.PyDataset over the uint8 cache (backend-agnostic).

    Each image is augmented by core.training.augmentation with a generator seeded from
    (seed, epoch, index), so a resumed run sees the same stream; loader
    threads overlap OpenCV work (which releases the GIL) with training.
    """

    @staticmethod
    def create(cache: np.ndarray, targets: np.ndarray, config: "TrainConfig", workers: int | None = None):
        import keras

        from core.training.augmentation import augment

        level = config.augment_level if config.augment else "none"
        smoothing = float(config.label_smoothing)
        workers = workers or max(1, min(8, (os.cpu_count() or 2)))

        class _Batches(keras.utils.PyDataset):
            def __init__(self):
                super().__init__(workers=workers, use_multiprocessing=False, max_queue_size=8)
                self.epoch = 0
                self.order = self._shuffled()

            def _shuffled(self):
                return np.random.default_rng([config.seed, self.epoch]).permutation(len(cache))

            def __len__(self):
                return int(np.ceil(len(cache) / config.batch_size))

            def __getitem__(self, index):
                rows = self.order[index * config.batch_size:(index + 1) * config.batch_size]
                rng = np.random.default_rng([config.seed, self.epoch, index])
                x = np.stack([augment(cache[r], rng, level) for r in rows])
                y = targets[rows].astype("float32")[:, None]
                if smoothing:
                    y = y * (1.0 - smoothing) + 0.5 * smoothing
                return x, y

            def on_epoch_end(self):
                self.epoch += 1
                self.order = self._shuffled()

        return _Batches()


def make_train_dataset(cache: np.ndarray, targets: np.ndarray, config: "TrainConfig", initial_epoch: int = 0):
    data = AugmentedBatches.create(cache, targets, config)
    data.epoch = initial_epoch
    data.order = data._shuffled()
    return data


def forward_for(model):
    """A fast inference function for validation: screening's compiled tf.function
    on TensorFlow, Keras' own compiled predict step on other backends."""
    import keras

    if keras.backend.backend() == "tensorflow":
        return compile_forward(model)
    return lambda batch: np.asarray(model.predict_on_batch(np.asarray(batch, np.float32))).reshape(-1)


def predict_cache(forward, cache: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """Probabilities for the uint8 cache; `forward` is core.screening.screener.compile_forward(model),
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
    # Label smoothing is applied to the targets by the data pipeline (AugmentedBatches).


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
            self.forward = forward_for(self.model)

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
def split_validation(val_s: list[Sample], seed: int) -> tuple[list[Sample], list[Sample], str]:
    """Validation -> (selection part, calibration part, protocol), grouped by patient.

    The best epoch is chosen on the selection part; temperature and threshold
    are fitted on the calibration part; the reported metrics come from the
    selection part at the calibration part's threshold. So the epoch, the
    operating point and the figures never all come from the same images.
    Too small a validation set cannot be halved with both classes on each
    side: then one set does everything, and the protocol says so.
    """
    try:
        select, calib = ds_mod.grouped_split(val_s, 0.5 - 1e-9, seed + 1)
    except ValueError:
        return val_s, val_s, "single validation set (too few patients to hold a calibration part apart)"
    counts = [ds_mod.class_counts(part) for part in (select, calib)]
    if any(min(c.values()) < 2 for c in counts):
        return val_s, val_s, "single validation set (too few images per class to hold a calibration part apart)"
    return select, calib, "validation halved by patient: best epoch on 'selection', temperature and threshold on 'calibration'"


def _rows(cache: np.ndarray, samples: list[Sample], part: list[Sample]) -> np.ndarray:
    """The cache rows of `part`, a subset of the `samples` the cache was decoded from."""
    index = {s.path: i for i, s in enumerate(samples)}
    return cache[[index[s.path] for s in part]]


def _fit_heat_scale(card, model, cache, targets, log) -> None:
    """Absolute heat scales (core.models.gradcam) for the coarse and the fine map, on validation positives."""
    from core.models.gradcam import fit_reference
    from core.models.architectures import FINE_CAM_LAYER

    inputs = cache.astype(np.float32) / 255.0
    try:
        card.gradcam_reference = fit_reference(model, inputs, targets, card.gradcam_layer)
        card.fine_cam = {"layer": FINE_CAM_LAYER, "method": "layercam",
                         "reference": fit_reference(model, inputs, targets, FINE_CAM_LAYER, "layercam")}
    except (ValueError, ImportError) as exc:  # e.g. no positives, or a backend without TensorFlow
        log(f"heat scale not fitted ({exc}); maps fall back to per-image peaks")


def _fit_scope(model, arch: str, train_s, train_cache, seed: int, log):
    """Fit the scope detector on this model's own training images: the Gaussians on
    most training patients, the scale and threshold on the others (core.models.scope)."""
    from core.models.scope import fit_scope_detector, heldout_patients

    try:
        fit_s, held_s = heldout_patients(train_s, 0.2, seed)  # the rule `fit-scope` uses too
        return fit_scope_detector(model, _rows(train_cache, train_s, fit_s), _rows(train_cache, train_s, held_s),
                                  architecture=arch, train_labels=[s.label for s in fit_s])
    except Exception as exc:  # a detector that cannot be fitted must not lose the trained model
        log(f"scope detector not fitted: {exc}")
        return None


def train(config: TrainConfig, on_batch: BatchCallback | None = None,
          on_epoch: EpochCallback | None = None, cancel: threading.Event | None = None,
          resume: bool = False, log: Callable[[str], None] = lambda msg: None) -> TrainOutcome:
    """Train (or resume) a model; returns the best epoch's model and an unsaved card."""
    import keras

    import core.models.layers  # noqa: F401  registers the custom layers for (re)loading

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
    select_s, _, _ = split_validation(val_s, config.seed)  # the best epoch is chosen on this part
    select_cache = _rows(val_cache, val_s, select_s)
    select_t = np.array([s.target for s in select_s])
    train_t = np.array([s.target for s in train_s])
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

    monitor = _make_monitor(config, run_dir, select_cache, select_t, steps, state, on_batch, on_epoch, cancel)
    if state["epoch"] < config.epochs and state["stale_epochs"] < config.patience:
        model.fit(make_train_dataset(train_cache, train_t, config, state["epoch"]), epochs=config.epochs,
                  initial_epoch=state["epoch"], callbacks=[monitor], verbose=0, shuffle=False,
                  class_weight=class_weights(train_t) if config.class_weighting else None)
    if monitor.cancelled:
        raise TrainingCancelled()
    if not (run_dir / "best.keras").is_file():
        raise TrainingError("training stopped before the first epoch finished; nothing to keep")

    best = keras.models.load_model(run_dir / "best.keras", compile=False, safe_mode=True)
    return _finalise(best, config, run_dir, state, train_s, train_cache, val_s, val_cache, unreadable, log)


def _finalise(best, config: TrainConfig, run_dir: Path, state: dict, train_s, train_cache, val_s, val_cache,
              unreadable, log) -> TrainOutcome:
    """After the epochs: temperature and threshold on the calibration part, metrics on
    the selection part, the scope detector on the training images, an unsaved card."""
    from core.models.calibration import apply_temperature, calibration_report, fit_temperature
    from core.models.registry import ModelCard

    select_s, calib_s, protocol = split_validation(val_s, config.seed)
    select_cache, calib_cache = _rows(val_cache, val_s, select_s), _rows(val_cache, val_s, calib_s)
    select_t = np.array([s.target for s in select_s])
    calib_t = np.array([s.target for s in calib_s])
    forward = forward_for(best)
    raw_calib = predict_cache(forward, calib_cache)
    raw_select = predict_cache(forward, select_cache)
    try:
        temperature = fit_temperature(calib_t, raw_calib)
    except ValueError:
        temperature = 1.0
    calib_p = apply_temperature(raw_calib, temperature)
    select_p = apply_temperature(raw_select, temperature)
    threshold = storable_threshold(threshold_for_sensitivity(calib_t, calib_p, config.target_sensitivity))
    metrics = binary_metrics(select_t, select_p, threshold)
    metrics["best_epoch"] = state["best_epoch"]
    metrics["protocol"] = protocol
    metrics["calibration_part"] = binary_metrics(calib_t, calib_p, threshold)
    calibration = {
        "method": "temperature scaling (NLL) on the validation calibration part",
        "temperature": temperature,
        "selection_before": calibration_report(select_t, raw_select),
        "selection_after": calibration_report(select_t, select_p),
    }
    card = ModelCard(
        name=config.name, architecture=config.arch, input_size=config.input_size,
        threshold=threshold, training_command=config.command,
        training_data=training_summary(config, train_s, val_s, unreadable, select_s, calib_s),
        validation_metrics=metrics, temperature=temperature, calibration=calibration,
        notes=(f"threshold chosen on the validation calibration part for sensitivity >= "
               f"{config.target_sensitivity}, on the calibrated scale"),
    )
    _fit_heat_scale(card, best, calib_cache, calib_t, log)
    detector = _fit_scope(best, config.arch, train_s, train_cache, config.seed, log)
    val_probs = apply_temperature(predict_cache(forward, val_cache), temperature)
    return TrainOutcome(best, card, np.array([s.target for s in val_s]), val_probs, [s.path for s in val_s],
                        state["history"], run_dir, unreadable, detector)



def finalise_run(run_dir: str | Path, checkpoint: str | Path | None = None,
                 log: Callable[[str], None] = lambda msg: None) -> TrainOutcome:
    """Turn a run's best checkpoint into a model + card without training further.

    For a run that was cut short (a session's end, a time limit): the card
    records the epoch it reached, so nobody mistakes it for a finished schedule.
    """
    import keras

    import core.models.layers  # noqa: F401

    config = load_run_config(run_dir)
    run_dir = Path(run_dir)
    checkpoint = Path(checkpoint) if checkpoint else run_dir / "best.keras"
    if not checkpoint.is_file():
        raise TrainingError(f"no checkpoint to finalise: {checkpoint}")
    split = json.loads((run_dir / "split.json").read_text(encoding="utf-8"))
    state_path = run_dir / "state.json"
    state = json.loads(state_path.read_text(encoding="utf-8")) if state_path.is_file() else {"best_epoch": 0, "history": []}
    train_s = [Sample(**s) for s in split["train"]]
    val_s = [Sample(**s) for s in split["val"]]
    log(f"decoding {len(train_s) + len(val_s)} images at {config.input_size}px ...")
    train_cache, train_s, bad_train = decode_samples(train_s, config.input_size)
    val_cache, val_s, bad_val = decode_samples(val_s, config.input_size)
    best = keras.models.load_model(checkpoint, compile=False, safe_mode=True)
    outcome = _finalise(best, config, run_dir, state, train_s, train_cache, val_s, val_cache, bad_train + bad_val, log)
    reached = state.get("epoch", 0)
    if reached < config.epochs:
        outcome.card.notes += (f"; the schedule was cut at epoch {reached} of {config.epochs} "
                               f"(best epoch {state.get('best_epoch')}) and finalised from that checkpoint")
    return outcome


def _portable_folder(folder) -> str | None:
    """The training folder as recorded in a card: relative to the repository
    when it lies beside it (so cards carry no build machine's paths)."""
    if not folder:
        return None
    repo = Path(__file__).resolve().parent.parent
    folder = Path(folder).resolve()
    try:
        relative = os.path.relpath(folder, repo)
    except ValueError:  # another drive on Windows
        return str(folder)
    # Inside the repository or beside it (../shared/data): relative; elsewhere as it is.
    return relative if not relative.startswith(os.pardir + os.sep + os.pardir) else str(folder)


def training_summary(config: TrainConfig, train_s, val_s, unreadable, select_s=(), calib_s=()) -> dict:
    return {
        "folder": _portable_folder(config.folder),
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
        "selection_counts": ds_mod.class_counts(list(select_s)),
        "calibration_counts": ds_mod.class_counts(list(calib_s)),
        "init": config.init, "augment": config.augment, "augment_level": config.augment_level,
        "standardise": config.standardise, "label_smoothing": config.label_smoothing,
        "class_weighting": config.class_weighting,
        "classes": list(CLASSES),
    }
