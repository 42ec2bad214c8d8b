"""Where each cross-validated recipe's Grad-CAM heat sits, on its folds' held-out images.

The companion of core.training.cross_validation, for the issue's "a model that looks at
the lungs": for every finished (recipe, fold) the fold's scored model (final.keras; a
recipe without weight averaging may use last.keras, which holds the same weights) maps
its held-out patients in the recipe's input view, and core.models.lung_fields measures
the share of heat outside the estimated lung fields, how often the peak lies outside,
and the no-skill line (the share a uniform map would score: 1 - the lungs' area). The
lung fields are estimated on the image the model saw (the crop, for the thorax view),
so recipes are compared by their skill: no-skill share minus measured share.
site_validation is never used. Written to heat/<recipe>-fold<k>.json, resumable
(core.training.cv_measures).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from core.training.cross_validation import CVConfig
from core.training.cv_measures import measure_path, measure_scored_folds, summarise_measures


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


KIND = "heat"
KEYS = ("mean_share_outside", "peak_outside_rate", "uniform_map_share_outside", "skill")


def heat_path(config: CVConfig, recipe: str, fold: int) -> Path:
    return measure_path(config, KIND, recipe, fold)


def run_heat(config: CVConfig, recipes: list[str], log: Callable[[str], None] = print) -> list[Path]:
    """Measure every finished (recipe, fold) not measured yet."""
    return measure_scored_folds(config, recipes, KIND, lambda model, images, _samples: heat_on_lungs(model, images),
                                log)


def summarise_heat(out_dir) -> dict:
    """Per recipe: the mean over folds of each measure, and the folds it comes from."""
    return summarise_measures(out_dir, KIND, KEYS)
