"""Where each cross-validated recipe's Grad-CAM heat sits, on its folds' held-out images.

The companion of core.training.cross_validation, for the issue's "a model that looks at
the lungs": for every finished (recipe, fold) the fold's scored model (final.keras; a
recipe without weight averaging may use last.keras, which holds the same weights) maps
its held-out patients in the recipe's input view, and core.models.lung_fields measures
the share of heat outside the estimated lung fields, how often the peak lies outside,
and the no-skill line (the share a uniform map would score: 1 - the lungs' area). The
lung fields are estimated on the image the model saw (the crop, for the thorax view),
so recipes are compared by their skill: no-skill share minus measured share.
site_validation is never used. Written to heat/<recipe>-fold<k>.json, resumable.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np

from core.training import dataset as ds_mod
from core.training.cross_validation import RECIPES, CVConfig, load_cache, load_or_make_folds, result_path
from core.training.run_config import atomic_json


def heat_on_lungs(keras_model, images: np.ndarray, batch_size: int = 32) -> dict:
    """Heat outside the lung fields for uint8 model inputs (N, S, S, 1) of one model."""
    from core.models.architectures import GRADCAM_LAYER
    from core.models.gradcam import gradcam_for
    from core.models.lung_fields import estimate_lung_fields, heat_outside

    cam = gradcam_for(keras_model, GRADCAM_LAYER)
    shares, peaks, lung_area, prior = [], [], [], 0
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size].astype(np.float32) / 255.0
        _, maps = cam(batch)
        for image, heat in zip(batch, maps):
            mask, used_prior = estimate_lung_fields(image[..., 0])
            prior += used_prior
            lung_area.append(float(mask.mean()))
            share, peak = heat_outside(heat, mask)
            if share is not None:
                shares.append(share)
                peaks.append(float(peak))
    no_skill = 1.0 - float(np.mean(lung_area)) if lung_area else None
    share = float(np.mean(shares)) if shares else None
    return {"n": int(len(images)), "empty_maps": int(len(images) - len(shares)), "prior_used": int(prior),
            "mean_share_outside": share, "peak_outside_rate": float(np.mean(peaks)) if peaks else None,
            "uniform_map_share_outside": no_skill,
            "skill": None if share is None or no_skill is None else no_skill - share}


def heat_path(config: CVConfig, recipe: str, fold: int) -> Path:
    return Path(config.out_dir) / "heat" / f"{recipe}-fold{fold}.json"


def _scored_model(run_dir: Path, recipe: str):
    import keras

    import core.models.layers  # noqa: F401  custom layers for reloading

    final, last = run_dir / "final.keras", run_dir / "last.keras"
    if final.is_file():
        return keras.models.load_model(final, compile=False, safe_mode=True)
    if last.is_file() and not RECIPES[recipe].get("ema_momentum"):
        return keras.models.load_model(last, compile=False, safe_mode=True)
    return None  # an averaged model scored before final.keras was kept: its weights are gone


def run_heat(config: CVConfig, recipes: list[str], log: Callable[[str], None] = print) -> list[Path]:
    """Measure every finished (recipe, fold) not measured yet."""
    samples = sorted(ds_mod.labelled_samples(config.folder), key=lambda s: s.path)
    folds = load_or_make_folds(config, samples)
    caches, written = {}, []
    for recipe in recipes:
        for fold, held in enumerate(folds):
            target = heat_path(config, recipe, fold)
            if target.is_file() or not result_path(config, recipe, fold).is_file():
                continue
            model = _scored_model(Path(config.out_dir) / "runs" / f"{recipe}-fold{fold}", recipe)
            if model is None:
                log(f"{recipe} fold {fold}: no scored weights kept, not measured")
                continue
            view = RECIPES[recipe].get("input_view", "full")
            if view not in caches:
                caches[view] = load_cache(config, samples, log, view)
            target.parent.mkdir(parents=True, exist_ok=True)
            measured = heat_on_lungs(model, caches[view][held])
            atomic_json(target, {"recipe": recipe, "fold": fold, "view": view, **measured})
            log(f"{recipe} fold {fold}: heat outside {measured['mean_share_outside']:.3f} "
                f"(no skill {measured['uniform_map_share_outside']:.3f}), peak outside {measured['peak_outside_rate']:.3f}")
            written.append(target)
    return written


def summarise_heat(out_dir) -> dict:
    """Per recipe: the mean over folds of each measure, and the folds it comes from."""
    by_recipe: dict[str, list[dict]] = {}
    for path in sorted((Path(out_dir) / "heat").glob("*-fold*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        by_recipe.setdefault(data["recipe"], []).append(data)
    keys = ("mean_share_outside", "peak_outside_rate", "uniform_map_share_outside", "skill")
    return {recipe: {"folds": [r["fold"] for r in rows], "view": rows[0]["view"],
                     **{k: float(np.mean([r[k] for r in rows if r[k] is not None])) for k in keys}}
            for recipe, rows in by_recipe.items()}
