"""Measures taken after cross-validation on each finished fold's scored model and held-out images.

One loop for every such measure (where the heat sits, what occlusion does, ...): for each
(recipe, fold) whose result exists and whose measure does not, the fold's scored model
(final.keras; a recipe without weight averaging may use last.keras, which holds the same
weights) is measured on its held-out patients in the recipe's input view and written to
<out>/<kind>/<recipe>-fold<k>.json, so a cut run resumes. site_validation is never used.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np

from core.training.cross_validation import (RECIPES, CVConfig, load_cache, load_or_make_folds, protocol_samples,
                                            result_path)
from core.training.run_config import atomic_json

# measure(keras_model, held-out uint8 images (N, S, S, 1), their samples) -> JSON-ready dict
Measure = Callable[[object, np.ndarray, list], dict]


def measure_path(config: CVConfig, kind: str, recipe: str, fold: int) -> Path:
    return Path(config.out_dir) / kind / f"{recipe}-fold{fold}.json"


def scored_model(run_dir: Path, recipe: str):
    """The weights a fold was scored with, or None where they were not kept."""
    import keras

    import core.models.layers  # noqa: F401  custom layers for reloading

    final, last = run_dir / "final.keras", run_dir / "last.keras"
    if final.is_file():
        return keras.models.load_model(final, compile=False, safe_mode=True)
    if last.is_file() and not RECIPES[recipe].get("ema_momentum"):
        return keras.models.load_model(last, compile=False, safe_mode=True)
    return None  # an averaged model scored before final.keras was kept: its weights are gone


def measure_scored_folds(config: CVConfig, recipes: list[str], kind: str, measure: Measure,
                         log: Callable[[str], None] = print, views: tuple[str, ...] | None = None) -> list[Path]:
    """Measure every finished (recipe, fold) not measured yet; `views` limits the input views
    (a recipe in another view is skipped)."""
    samples = protocol_samples(config)
    folds = load_or_make_folds(config, samples)
    caches, written = {}, []
    for recipe in recipes:
        view = RECIPES[recipe].get("input_view", "full")
        if views is not None and view not in views:
            continue
        for fold, held in enumerate(folds):
            target = measure_path(config, kind, recipe, fold)
            if target.is_file() or not result_path(config, recipe, fold).is_file():
                continue
            model = scored_model(Path(config.out_dir) / "runs" / f"{recipe}-fold{fold}", recipe)
            if model is None:
                log(f"{recipe} fold {fold}: no scored weights kept, not measured")
                continue
            if view not in caches:
                caches[view] = load_cache(config, samples, log, view)
            target.parent.mkdir(parents=True, exist_ok=True)
            measured = measure(model, caches[view][held], [samples[i] for i in held])
            atomic_json(target, {"recipe": recipe, "fold": fold, "view": view, **measured})
            log(f"{recipe} fold {fold} {kind}: " + ", ".join(
                f"{k} {v:.3f}" for k, v in measured.items() if isinstance(v, float)))
            written.append(target)
    return written


def summarise_measures(out_dir, kind: str, keys: tuple[str, ...]) -> dict:
    """Per recipe: the mean over folds of each measure (folds where it is None left out),
    and the folds it comes from."""
    by_recipe: dict[str, list[dict]] = {}
    for path in sorted((Path(out_dir) / kind).glob("*-fold*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        by_recipe.setdefault(data["recipe"], []).append(data)
    summary = {}
    for recipe, rows in by_recipe.items():
        means = {}
        for key in keys:
            values = [r[key] for r in rows if r.get(key) is not None]
            means[key] = float(np.mean(values)) if values else None
        summary[recipe] = {"folds": [r["fold"] for r in rows], "view": rows[0]["view"], **means}
    return summary
