"""After the epochs: the validation halves, temperature and threshold, the card,
the heat scales and the scope detector; and `finalise_run` for a run cut short."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable

import numpy as np

from core.training import dataset as ds_mod
from core.training.batches import decode_samples, forward_for, predict_cache
from core.training.dataset import CLASSES, Sample
from core.training.metrics import binary_metrics, storable_threshold, threshold_for_sensitivity
from core.training.run_config import TrainConfig, TrainingError, TrainOutcome, load_run_config


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


def rows_of(cache: np.ndarray, samples: list[Sample], part: list[Sample]) -> np.ndarray:
    """The cache rows of `part`, a subset of the `samples` the cache was decoded from."""
    index = {s.path: i for i, s in enumerate(samples)}
    return cache[[index[s.path] for s in part]]


def _fit_heat_scale(card, model, cache, targets, log) -> None:
    """The absolute heat scale (core.models.gradcam) of the Grad-CAM map, on validation positives."""
    from core.models.gradcam import fit_reference

    inputs = cache.astype(np.float32) / 255.0
    try:
        card.gradcam_reference = fit_reference(model, inputs, targets, card.gradcam_layer)
    except (ValueError, ImportError) as exc:  # e.g. no positives, or a backend without TensorFlow
        log(f"heat scale not fitted ({exc}); maps fall back to per-image peaks")


def _fit_scope(model, arch: str, train_s, train_cache, seed: int, log):
    """Fit the scope detector on this model's own training images: the Gaussians on
    most training patients, the scale and threshold on the others (core.models.scope)."""
    from core.models.scope import fit_scope_detector, heldout_patients

    try:
        fit_s, held_s = heldout_patients(train_s, 0.2, seed)  # the rule `fit-scope` uses too
        return fit_scope_detector(model, rows_of(train_cache, train_s, fit_s), rows_of(train_cache, train_s, held_s),
                                  architecture=arch, train_labels=[s.label for s in fit_s])
    except Exception as exc:  # a detector that cannot be fitted must not lose the trained model
        log(f"scope detector not fitted: {exc}")
        return None


# Below this many training images a fine-tune keeps its base model's scope check: the
# issue's 218-image refit flagged 19 of 406 paediatric films (a check refitted on a few
# hundred images learns those images, not the population).
SCOPE_REFIT_MIN_IMAGES = 1000


def _base_scope(init: str | None):
    """(label, detector) of the registered model a fine-tune starts from; None for random/imagenet."""
    from core.models.architectures import INIT_IMAGENET, INIT_RANDOM

    if init in (INIT_RANDOM, INIT_IMAGENET, None):
        return None
    from core.models.registry import load_model

    base = load_model(init)
    return base.card.label, base.scope_detector


def _scope_for(best, config: TrainConfig, train_s, train_cache, log):
    """(detector, what the card says about it): refitted on the training images, or, for a
    fine-tune on too few images to refit, the base model's check kept as it is."""
    base = _base_scope(config.init) if len(train_s) < SCOPE_REFIT_MIN_IMAGES else None
    if base is None:
        return _fit_scope(best, config.arch, train_s, train_cache, config.seed, log), "fitted on this run's training images"
    label, detector = base
    note = (f"kept from the base model {label}: {len(train_s)} training images are fewer than the "
            f"{SCOPE_REFIT_MIN_IMAGES} needed to refit it (refit on the base model's training folder with "
            f"`pneumoscan-cli fit-scope FOLDER --model NAME` if the new weights move its features)")
    log(f"scope check {note}")
    return detector, note


def _acceptance(card, metrics: dict, val_s, target: float, log) -> None:
    """Record whether the held-out evidence backs this model; say why not in the card and the log."""
    from core.training.acceptance import record_acceptance

    labels = np.array([s.target for s in val_s])
    record = record_acceptance(card, metrics, target, (int((labels == 1).sum()), int((labels == 0).sum())))
    if not record["validated"]:
        log(f"not validated: {'; '.join(record['reasons'])}")


def finalise_outcome(best, config: TrainConfig, run_dir: Path, state: dict, train_s, train_cache, val_s, val_cache,
                     unreadable, log) -> TrainOutcome:
    """After the epochs: temperature and threshold on the calibration part, metrics on
    the selection part, the scope detector on the training images, an unsaved card."""
    from core.models.calibration import apply_temperature, calibration_report, fit_temperature
    from core.models.registry import ModelCard

    select_s, calib_s, protocol = split_validation(val_s, config.seed)
    select_cache, calib_cache = rows_of(val_cache, val_s, select_s), rows_of(val_cache, val_s, calib_s)
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
    _acceptance(card, metrics, val_s, config.target_sensitivity, log)
    _fit_heat_scale(card, best, calib_cache, calib_t, log)
    detector, scope_note = _scope_for(best, config, train_s, train_cache, log)
    card.training_data["scope_check"] = scope_note
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
    outcome = finalise_outcome(best, config, run_dir, state, train_s, train_cache, val_s, val_cache, bad_train + bad_val, log)
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
    repo = Path(__file__).resolve().parents[2]
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
        "lung_focus": config.lung_focus,
        "blank_borders_trimmed": True,  # core.imaging.preprocessing: what screening feeds it too
        "class_weighting": config.class_weighting,
        "classes": list(CLASSES),
    }

