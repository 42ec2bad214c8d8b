"""Qt-free results logic: score the current model on the new model's
validation split, metrics at a picked threshold, and saving the new model."""
from __future__ import annotations

import dataclasses
import threading

import numpy as np

from core.metrics import binary_metrics, storable_threshold

NAME_FORBIDDEN = '/\\:*?"<>|'


def score_model(entry, paths: list[str], report=None, cancel: threading.Event | None = None,
                batch_size: int = 32, store_path=None) -> np.ndarray:
    """Probabilities of a registered model on `paths` (NaN where a file fails).

    Goes through core.study_screening.screen_study, so the current model sees
    the images exactly as in screening, at its own input size (which may differ
    from the new model's), and results already in the store are reused. Runs on
    a worker thread; the model is loaded only if something must be screened.
    """
    from core.registry import load_model
    from core.store import ResultStore
    from core.study_screening import screen_study

    probs = np.full(len(paths), np.nan)
    with ResultStore(store_path) as store:
        items = screen_study(paths, lambda: load_model(entry), store, gradcam=False, cancel=cancel,
                             batch_size=batch_size, model_hash=entry.card.sha256)
        try:
            for i, item in enumerate(items):
                if item.result.probability is not None:
                    probs[i] = item.result.probability
                if report is not None and (i + 1) % batch_size == 0:
                    report(("score", i + 1, len(paths)))
        finally:
            items.close()
    return probs


def metrics_at(labels, probs, threshold: float) -> dict:
    """binary_metrics on the images the model could score."""
    probs = np.asarray(probs, dtype=float)
    ok = ~np.isnan(probs)
    return binary_metrics(np.asarray(labels)[ok], probs[ok], threshold)


def name_problem(name: str) -> str | None:
    """Why `name` cannot be a model name (the registry's rule), or None."""
    name = name.strip()
    if not name:
        return "Give the model a name."
    if any(c in name for c in NAME_FORBIDDEN):
        return f"A model name cannot contain any of {' '.join(NAME_FORBIDDEN)}"
    return None


def card_for_saving(outcome, name: str, version: int, threshold: float):
    """A copy of the outcome's card with the chosen name, version and threshold;
    the validation metrics are recomputed at that threshold so the card tells
    the truth about the operating point the model will be used at."""
    card = dataclasses.replace(outcome.card, name=name.strip(), version=int(version),
                               threshold=storable_threshold(threshold), sha256="", created="",
                               training_data=dict(outcome.card.training_data))
    metrics = binary_metrics(outcome.val_labels, outcome.val_probs, card.threshold)
    metrics["best_epoch"] = outcome.card.validation_metrics.get("best_epoch")
    card.validation_metrics = metrics
    chosen = outcome.card.threshold
    if abs(card.threshold - chosen) > 1e-9:
        card.notes = (f"{outcome.card.notes}; threshold set to {card.threshold:g} by the reader "
                      f"in the training wizard (validation choice was {chosen:g})")
    return card


def save_new_model(outcome, name: str, threshold: float, directory=None):
    """Register the trained model as the next version of `name`; returns the ModelEntry.

    The version is taken here, at save time, so two saves never collide.
    """
    from core.registry import ModelError, next_version, save_model

    problem = name_problem(name)
    if problem:
        raise ModelError(problem)
    card = card_for_saving(outcome, name, next_version(name.strip()), threshold)
    return save_model(outcome.keras_model, card, directory)
