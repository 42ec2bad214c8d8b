"""How much a cross-validated model's call rests on the film around the thorax (an occlusion check).

Within one hospital's films the frame around the chest (shoulders, arms, abdomen, burned-in
markers, collimation, the child's size) can carry the label, and cross-validation on those
films rewards a model for using it; another site's frames carry other cues or none. For each
finished full-film (recipe, fold), the held-out images are scored three ways:

- as they are;
- "thorax only": everything outside the thorax box (core.models.lung_fields.thorax_box, the
  box the thorax recipe crops to) filled with the film's own mean;
- "frame only": the thorax box filled the same way.

A "frame only" AUROC far above 0.5 means the model finds the label around the chest; a
"thorax only" AUROC well below "as is" means it needs the frame to decide. Films where the
estimate found no lungs (the box is the whole film) are left out of all three and counted.
Occlusion shows the model edges and flat regions it never saw, so a drop may overstate the
reliance: these figures bound it rather than measure it exactly. Written to occlusion/<recipe>-fold<k>.json.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from core.training.cross_validation import CVConfig
from core.training.cv_measures import measure_path, measure_scored_folds, summarise_measures
from core.training.metrics import auroc

KIND = "occlusion"
KEYS = ("auroc", "thorax_only_auroc", "frame_only_auroc", "no_box_rate")
KEEP = ("thorax", "frame")


def thorax_boxes(images: np.ndarray) -> list[tuple[int, int, int, int] | None]:
    """Each film's thorax box, None where it is the whole film (only the anatomical prior was
    found, or the lungs' box with its margins fills the film): nothing to hide there."""
    from core.models.lung_fields import thorax_box

    boxes = []
    for image in images:
        box = thorax_box(image[..., 0] if image.ndim == 3 else image)
        boxes.append(None if box == (0, image.shape[0], 0, image.shape[1]) else box)
    return boxes


def occluded(images: np.ndarray, boxes: list, keep: str) -> np.ndarray:
    """Copies of `images` with the part not kept ("thorax" or "frame") set to each film's mean."""
    if keep not in KEEP:
        raise ValueError(f"keep must be one of {KEEP}, not {keep!r}")
    out = images.copy()
    for image, box in zip(out, boxes):
        inside = np.zeros(image.shape[:2], bool)
        top, bottom, left, right = box
        inside[top:bottom, left:right] = True
        image[~inside if keep == "thorax" else inside] = np.round(image.mean()).astype(image.dtype)
    return out


def occlusion_scores(forward, images: np.ndarray, labels) -> dict:
    """AUROC as is, thorax only and frame only, on the films with a thorax box."""
    from core.training.batches import predict_cache

    labels = np.asarray(labels)
    boxes = thorax_boxes(images)
    found = np.array([b is not None for b in boxes], bool)
    images, labels, boxes = images[found], labels[found], [b for b in boxes if b is not None]
    scores = {keep: auroc(labels, predict_cache(forward, occluded(images, boxes, keep))) for keep in KEEP}
    return {"n": int(len(found)), "no_box": int((~found).sum()), "no_box_rate": float(1 - found.mean()),
            "auroc": auroc(labels, predict_cache(forward, images)),
            "thorax_only_auroc": scores["thorax"], "frame_only_auroc": scores["frame"]}


def occlusion_path(config: CVConfig, recipe: str, fold: int) -> Path:
    return measure_path(config, KIND, recipe, fold)


def run_occlusion(config: CVConfig, recipes: list[str], log: Callable[[str], None] = print) -> list[Path]:
    """Measure every finished full-film (recipe, fold) not measured yet (a cropped recipe has no frame)."""
    from core.training.batches import forward_for

    def measure(model, images, samples):
        return occlusion_scores(forward_for(model), images, [s.target for s in samples])

    return measure_scored_folds(config, recipes, KIND, measure, log, views=("full",))


def summarise_occlusion(out_dir) -> dict:
    return summarise_measures(out_dir, KIND, KEYS)
