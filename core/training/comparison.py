"""The training wizard's results logic (Qt-free): score the current model on the new model's
validation split, compare both at thresholds chosen by the same rule, with
95 % intervals, say when a model has seen the images, and save the new model.

Every probability here is on its model's calibrated scale (the card's
temperature applied to the network's raw output), the scale its threshold is on.
"""
from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.models.calibration import apply_temperature
from core.training.acceptance import record_acceptance, validation_problems
from core.training.metrics import (binary_metrics, bootstrap_auroc_ci, confidence_intervals, metrics_with_ci,
                                   storable_threshold, threshold_for_sensitivity)


def score_model(entry, paths: list[str], report=None, cancel: threading.Event | None = None,
                batch_size: int = 32) -> np.ndarray:
    """Calibrated probabilities of a registered model on `paths` (NaN where a file fails).

    Raw scores through core.screening.raw_scoring (the same decode and input size as
    screening, at the model's own input size, which may differ from the new
    model's), then the card's temperature once. Runs on a worker thread.
    """
    from core.models.cache import cached_model
    from core.screening.raw_scoring import raw_probabilities

    def progress(done: int, total: int) -> None:
        if report is not None:
            report(("score", done, total))

    loaded = cached_model(entry)  # the model the window screens with, loaded once
    raw, _errors = raw_probabilities(loaded, paths, batch_size, progress, cancel)
    return apply_temperature(raw, loaded.card.temperature)


def new_model_probs(outcome) -> np.ndarray:
    """The new model's validation probabilities on its card's scale: core.training.trainer
    returns them calibrated already (card.temperature applied), like screening."""
    return np.asarray(outcome.val_probs, dtype=float)


def _scored(labels, probs):
    probs = np.asarray(probs, dtype=float)
    ok = ~np.isnan(probs)
    return np.asarray(labels)[ok], probs[ok]


def metrics_at(labels, probs, threshold: float, auroc_ci=None) -> dict:
    """binary_metrics on the images the model could score, with 95 % intervals
    (`ci95`): Wilson for proportions, `auroc_ci` (pass it: it does not depend on
    the threshold, so it is bootstrapped once per model, see auroc_interval)."""
    labels, probs = _scored(labels, probs)
    metrics = binary_metrics(labels, probs, threshold)
    metrics["ci95"] = confidence_intervals(metrics)
    metrics["ci95"]["auroc"] = auroc_ci
    return metrics


def auroc_interval(labels, probs) -> list | None:
    interval = bootstrap_auroc_ci(*_scored(labels, probs))
    return None if interval is None else list(interval)


# A proposal above this reads as "1.000" and would call almost nothing positive; it comes
# from scores crowded at 1 on a few validation images. Lowering a threshold keeps every
# positive it caught, so the target sensitivity still holds at the cap.
MAX_PROPOSED_THRESHOLD = 0.999


def proposed_threshold(threshold: float) -> float:
    """A threshold to offer the reader: never above MAX_PROPOSED_THRESHOLD."""
    return min(float(threshold), MAX_PROPOSED_THRESHOLD)


def rule_threshold(labels, probs, target: float) -> float | None:
    """The comparison's rule, the same for both models: the highest threshold
    reaching `target` sensitivity on these images (None without positives),
    capped at MAX_PROPOSED_THRESHOLD."""
    labels, probs = _scored(labels, probs)
    if not (labels == 1).any():
        return None
    return proposed_threshold(storable_threshold(threshold_for_sensitivity(labels, probs, target)))


def activation_problem(labels, probs, threshold: float, target: float) -> str | None:
    """Why the validation evidence does not back making the model active at `threshold`
    (core.training.acceptance: too few images, or sensitivity below the target); None if it does."""
    labels, probs = _scored(labels, probs)
    problems = validation_problems(binary_metrics(labels, probs, threshold), target)
    return None if not problems else "Validation: " + "; ".join(problems) + "."


# -- images a model has already seen -----------------------------------------------

@dataclass
class Overlap:
    """How many of some images a model was trained on (its card's training folder)."""
    model: str
    folder: str
    seen: int
    total: int

    def sentence(self, what: str = "these images") -> str:
        return (f"{self.seen} of {what} ({self.total}) are in the folder {self.model} was trained on "
                f"({self.folder}): it has seen them, so its numbers on them look better than it is.")


def training_folder(card) -> Path | None:
    """The card's training folder, absolute (cards may record it relative to the repository)."""
    from core import paths

    folder = (getattr(card, "training_data", None) or {}).get("folder")
    if not folder:
        return None
    folder = Path(folder)
    candidates = [folder] if folder.is_absolute() else [paths.bundle_root() / folder, Path.cwd() / folder]
    return next((c.resolve() for c in candidates if c.is_dir()), None)


def training_overlap(card, image_paths, label: str = "") -> Overlap | None:
    """Images of `image_paths` that `card`'s model was trained on: inside its training
    folder, or a copy of a file there (same name and size). Lists the folder: run
    on a worker. None when the card names no folder that exists here."""
    folder = training_folder(card)
    if folder is None:
        return None
    from core.imaging.discovery import discover

    known = set()
    for path in discover(folder):
        try:
            known.add((path.name, path.stat().st_size))
        except OSError:
            continue
    seen = 0
    for path in image_paths:
        path = Path(path)
        try:
            inside = path.resolve().is_relative_to(folder)
            copied = (path.name, path.stat().st_size) in known
        except OSError:
            inside = copied = False
        seen += inside or copied
    name = label or getattr(card, "label", "the model")
    return Overlap(name, str(folder), seen, len(image_paths))


def name_problem(name: str) -> str | None:
    """Why `name` cannot be a model name (the registry's rule), or None."""
    from core.models.registry import ModelError, validate_name

    if not name.strip():
        return "Give the model a name."
    try:
        validate_name(name)  # the one rule, so the wizard never accepts what saving refuses
    except ModelError as exc:
        message = str(exc)
        return message[:1].upper() + message[1:] + "."
    return None


def card_for_saving(outcome, name: str, version: int, threshold: float):
    """A copy of the outcome's card with the chosen name, version and threshold;
    the validation metrics are recomputed at that threshold so the card tells
    the truth about the operating point the model will be used at."""
    card = dataclasses.replace(outcome.card, name=name.strip(), version=int(version),
                               threshold=storable_threshold(threshold), sha256="", created="",
                               training_data=dict(outcome.card.training_data))
    chosen = outcome.card.threshold
    trained = dict(outcome.card.validation_metrics)
    if abs(card.threshold - chosen) <= 1e-9 and {"tp", "fn", "tn", "fp"} <= trained.keys():
        # Training's own protocol (threshold and metrics from different parts) stands.
        trained["ci95"] = dict(confidence_intervals(trained), **(trained.get("ci95") or {}))
        card.validation_metrics = trained
        return card
    metrics = metrics_with_ci(outcome.val_labels, new_model_probs(outcome), card.threshold)
    metrics["best_epoch"] = trained.get("best_epoch")
    metrics["protocol"] = ("threshold picked by the reader in the training wizard; measured on all "
                           "validation images, the ones it was picked on (optimistic)")
    if abs(card.threshold - chosen) > 1e-9:
        card.notes = (f"{outcome.card.notes}; threshold set to {card.threshold:g} by the reader "
                      f"in the training wizard (validation choice was {chosen:g})")
    earlier = trained.get("acceptance")
    card.validation_metrics = {**metrics, "acceptance": earlier} if earlier else metrics
    if earlier:  # judged again at the reader's threshold, with training's target
        record_acceptance(card, metrics, earlier["target_sensitivity"])
    return card


def save_new_model(outcome, name: str, threshold: float, directory=None):
    """Register the trained model as the next version of `name`; returns the ModelEntry.

    The version is taken here, at save time, so two saves never collide.
    """
    from core.models.registry import ModelError, next_version, save_model, save_scope_detector

    problem = name_problem(name)
    if problem:
        raise ModelError(problem)
    card = card_for_saving(outcome, name, next_version(name.strip()), threshold)
    entry = save_model(outcome.keras_model, card, directory)
    detector = getattr(outcome, "scope_detector", None)
    # The scope check is refit with every training and fine-tune, and travels with the model.
    return save_scope_detector(entry, detector) if detector is not None else entry
