"""Ensembles of cross-validated recipes, scored on the same held-out folds.

An ensemble (the mean of its members' probabilities) is the cheapest "larger model":
no new training, each member is a fold model core.training.cross_validation already
fitted on the same patients. It is scored exactly as a recipe is (score_held_out: as
is, on the shifted copies, viral against normal, with TTA) and written as
results/ensemble-<a>+<b>-fold<k>.json, so core.training.cv_summary pairs it with the
baseline like any recipe. Any two different members flatter a pair; the like-for-like
control is the same recipe twice (baseline + baseline_seed1). site_validation is never used.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from core.training.cross_validation import (RECIPES, CVConfig, load_cache, load_or_make_folds, protocol_samples,
                                            result_path, score_held_out)
from core.training.cv_measures import scored_model
from core.training.run_config import atomic_json

PREFIX = "ensemble-"


def ensemble_name(members: list[str]) -> str:
    return PREFIX + "+".join(members)


def check_members(members: list[str]) -> str:
    """The members' shared input view; a clear ValueError for anything that cannot be averaged."""
    if len(members) < 2 or len(set(members)) != len(members):
        raise ValueError("an ensemble needs two or more different recipes")
    unknown = [m for m in members if m not in RECIPES]
    if unknown:
        raise ValueError(f"unknown recipe(s) {', '.join(unknown)}; known: {', '.join(RECIPES)}")
    views = {RECIPES[m].get("input_view", "full") for m in members}
    if len(views) > 1:
        raise ValueError(f"members see different input views ({', '.join(sorted(views))}): "
                         "their shifted copies would not be the same films")
    return views.pop()


def averaged_forward(forwards: list[Callable]) -> Callable:
    """One forward pass whose probabilities are the members' mean."""
    return lambda batch: np.mean([np.asarray(f(batch), dtype=np.float64).reshape(-1) for f in forwards], axis=0)


def run_ensemble(config: CVConfig, members: list[str], log: Callable[[str], None] = print) -> list[Path]:
    """Score the ensemble on every fold all its members finished and it has not been scored on."""
    from core.training.trainer import forward_for

    view = check_members(members)
    name = ensemble_name(members)
    samples = protocol_samples(config)
    folds = load_or_make_folds(config, samples)
    cache, written = None, []
    for fold, held in enumerate(folds):
        target = result_path(config, name, fold)
        if target.is_file():
            continue
        missing = [m for m in members if not result_path(config, m, fold).is_file()]
        models = [] if missing else [scored_model(Path(config.out_dir) / "runs" / f"{m}-fold{fold}", m)
                                     for m in members]
        if missing or any(model is None for model in models):
            log(f"{name} fold {fold}: not scored, members unfinished or without kept weights "
                f"({', '.join(missing) or 'weights'})")
            continue
        if cache is None:
            cache = load_cache(config, samples, log, view)
        scores = score_held_out(averaged_forward([forward_for(m) for m in models]), cache[held],
                                [samples[i] for i in held])
        atomic_json(target, {"recipe": name, "fold": fold, "members": members, "overrides": {},
                             "train_images": int(len(samples) - len(held)), **scores})
        log(f"{name} fold {fold}: AUROC {scores['auroc']:.4f}, shifted {scores['shifted_auroc_mean']:.4f}, "
            f"viral-vs-normal {scores['viral_vs_normal_auroc']:.4f}, TTA {scores['tta_auroc']:.4f}")
        written.append(target)
    return written
