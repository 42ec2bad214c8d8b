"""Training a model to keep its evidence on the lungs: a penalty on the class activation
map outside the estimated lung fields (issue 21's "a model that looks at the lungs").

Why this form. The classifier head is global average pooling then one sigmoid unit, so
the logit is exactly the bias plus the mean over cells of the class activation map
CAM = sum_c w_c * A_c (Zhou et al. 2016) on the Grad-CAM layer, and the app's Grad-CAM
map is ReLU(CAM) up to scale. The penalty, weight * mean over cells of
|CAM - offset| * outside (outside: each cell's share outside the lung fields; offset: one
learned constant <= 0), therefore acts on exactly the map a reader sees and costs one
extra product per batch (no second-order gradients, unlike input-gradient penalties).
Outside cells held at one constant for every film carry no information about the film,
and a constant <= 0 paints no heat there. The offset matters: background tissue drives
every cell's features, so a penalty on |CAM| itself is cheapest to meet by silencing the
whole map (a toy model collapsed to chance that way); the offset absorbs that shared
level. In logit units, an outside cell's evidence is worth keeping only while the error
on its film exceeds `weight` times the cell's outside share. Both signs count: evidence
*against* pneumonia read from the frame is reliance on the frame too.

The masks come from core.models.lung_fields on the training image itself (no labels),
made symmetric (the union with their mirror image): the estimate misses a consolidated
lung, which is as bright as soft tissue, and penalising heat there would teach the model
to ignore the very finding; a pneumonia is usually one-sided, so the mirror restores it.
Screening is unchanged: the penalty lives only in the training wrapper, and the saved
model is the plain one.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

OUTSIDE_INPUT = "outside_lungs"
CROSS_VALIDATED_WEIGHT = 0.3  # the weight cross-validation supported (docs/cv_recipe_selection.json)


def weight_of(card) -> float:
    """The lung-focus weight a model was trained with (0.0 without), from its card, so a
    retrain can keep the recipe of the model it replaces."""
    data = getattr(card, "training_data", None) or {}
    try:
        return max(0.0, float(data.get("lung_focus") or 0.0))
    except (TypeError, ValueError):
        return 0.0


def training_mask(image: np.ndarray) -> np.ndarray:
    """uint8 (S, S): 1 inside the estimated lung fields or their mirror image."""
    from core.models.lung_fields import estimate_lung_fields

    mask, _used_prior = estimate_lung_fields(np.asarray(image)[..., 0] if np.ndim(image) == 3 else image)
    return (mask | mask[:, ::-1]).astype(np.uint8)


def training_masks(cache: np.ndarray) -> np.ndarray:
    """One training mask per uint8 image of `cache` (N, S, S, 1) -> uint8 (N, S, S)."""
    if not len(cache):
        return np.zeros(cache.shape[:3], np.uint8)
    return np.stack([training_mask(image) for image in cache])


def cached_training_masks(folder, cache: np.ndarray, log=lambda msg: None) -> np.ndarray:
    """training_masks(cache), kept in `folder` as lung_masks_<size>.npy so a resumed run does
    not estimate them again (minutes at 224 px). A file that does not match the cache, or
    cannot be read (a cut while it was written elsewhere), is replaced; it is written atomically."""
    from core.files import write_atomically

    path = Path(folder) / f"lung_masks_{cache.shape[1]}.npy"
    if path.is_file():
        try:
            masks = np.load(path)
        except (OSError, ValueError) as exc:
            log(f"lung masks in {path.name} unreadable ({exc}); estimating them again")
        else:
            if masks.shape == cache.shape[:3]:
                return masks
    log(f"estimating the lung fields of {len(cache)} training images ...")
    masks = training_masks(cache)
    write_atomically(path, lambda out: np.save(out, masks))
    return masks


def outside_share(mask: np.ndarray, grid: int) -> np.ndarray:
    """float32 (grid, grid): the share of each map cell outside a 0/1 mask (area average)."""
    inside = cv2.resize(np.asarray(mask, np.float32), (grid, grid), interpolation=cv2.INTER_AREA)
    return np.clip(1.0 - inside, 0.0, 1.0).astype(np.float32)


def cam_grid(keras_model) -> int:
    """The side of the model's Grad-CAM layer grid (6 for custom_cnn at 96 px)."""
    from core.models.architectures import GRADCAM_LAYER

    return int(keras_model.get_layer(GRADCAM_LAYER).output.shape[1])


def penalty_value(features: np.ndarray, kernel: np.ndarray, outside: np.ndarray, weight: float,
                  offset: float = 0.0) -> float:
    """The penalty in NumPy, for tests and reports: weight * mean(|CAM - offset| * outside)."""
    cam = np.einsum("bhwc,c->bhw", features, np.asarray(kernel).reshape(-1))
    return float(weight * np.mean(np.abs(cam - offset) * outside))


def training_wrapper(base, weight: float):
    """A Keras model {image, outside_lungs} -> probability sharing `base`'s weights, whose
    loss carries the penalty. Fit the wrapper; save and score `base`."""
    import keras
    from keras import layers, ops

    from core.models.architectures import GRADCAM_LAYER

    head = base.layers[-1]
    if not isinstance(head, layers.Dense) or int(head.units) != 1:
        raise ValueError(f"model {base.name!r} does not end in one dense unit: its CAM is not exact")

    class LungFocusPenalty(layers.Layer):
        """Adds weight * mean(|CAM - offset| * outside) to the loss; passes the probability through."""

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            # A function, not an attribute: Keras would otherwise track the head twice.
            self.kernel = lambda: head.kernel
            self.offset_raw = self.add_weight(shape=(), initializer="zeros", name="offset_raw")

        def offset(self):
            return -ops.softplus(self.offset_raw)

        def call(self, features, outside, probability):
            cam = ops.einsum("bhwc,c->bhw", ops.cast(features, "float32"), ops.reshape(self.kernel(), (-1,)))
            self.add_loss(weight * ops.mean(ops.abs(cam - self.offset()) * outside))
            return probability

    grid = cam_grid(base)
    features = keras.Model(base.input, [base.get_layer(GRADCAM_LAYER).output, base.output],
                           name="features_and_probability")
    image = keras.Input(base.input.shape[1:], name="image")
    outside = keras.Input((grid, grid), name=OUTSIDE_INPUT)
    maps, probability = features(image)
    output = LungFocusPenalty(name="lung_focus_penalty")(maps, outside, probability)
    return keras.Model({"image": image, OUTSIDE_INPUT: outside}, output, name=f"{base.name}_lung_focus")
