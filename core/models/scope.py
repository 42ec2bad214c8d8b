"""Scope check: is an image within what a model knows?

Two parts, both cheap enough to run on every screened image:

- `metadata_reason(meta, population)`: DICOM attributes, where the file has
  them: modality, body part, a lateral view, the patient's age against the
  population the model card states.
- `ScopeDetector`: image content, for files without metadata. Fitted on the
  model's own training images only (never on out-of-scope examples), two
  criteria that share the stated false-flag rate:
  - a shrinkage-covariance (Ledoit-Wolf) Gaussian per feature block, where the
    blocks are mean+std pooled activations of the model's layers at its last
    two resolutions (one Gaussian per class when the labels are known; the
    distance is to the nearest) plus a small image-statistics block (thumbnail
    layout, intensity histogram, edges at three scales). Each block's
    Mahalanobis distance is standardised on held-out training images and the
    blocks are summed ("unlike the training images": other kinds of images);
  - `LayoutCheck` (core.models.scope_layout): is the chest X-ray laid out like the
    training films, or turned, flipped, framed closer or wider? The Gaussian
    alone misses these, because they are still chest X-rays.
  Each threshold is a held-out score quantile.

The detector's features come from `scope_feature_model`, ONE Keras model that
outputs the probability and the pooled features, so screening and the check
share a forward pass. Saved as plain arrays (`.npz`, read with
allow_pickle=False). Qt-free; TensorFlow is imported lazily.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.models.scope_gaussians import (ClassGaussians, GaussianBlock, fit_block, gaussian_arrays, gaussian_from,
                                         members, single_threaded_blas, spread_scale)
# The metadata rules and layout reasons are also core.models.scope's own (callers import every
# reason from here).
from core.models.scope_layout import FRAMING, ORIENTATION, LayoutCheck  # noqa: F401
from core.models.scope_metadata import (LATERAL, NOT_CHEST, age_reason, metadata_reason,  # noqa: F401
                                        not_an_xray, patient_age_years, population_of)

UNFAMILIAR = "unlike the training images"
IMAGE_STATS = "image_stats"  # the block computed from the input pixels, not a model layer

# Layers pooled per architecture of core.models.architectures: the last two resolutions, where
# features describe anatomy rather than texture (on the v1 models, adding the
# early layers diluted the score: upside-down chests slipped through). Other
# models fall back to `_layers_by_resolution`.
SCOPE_LAYERS = {
    "custom_cnn": ("block3b_relu", "last_conv"),
    "mobilenet_v2": ("block_13_expand_relu", "last_conv"),
}
THUMBNAIL = 16  # side of the layout thumbnail (image statistics)
HISTOGRAM_BINS = 16
TEXTURE_SCALES = 3
DEFAULT_FALSE_FLAG_RATE = 0.01


# ------------------------------------------------------------- features

def scope_layers(keras_model, architecture: str | None = None) -> list[str]:
    """The layers the detector pools: named per architecture, else one per resolution."""
    names = {layer.name for layer in keras_model.layers}
    wanted = SCOPE_LAYERS.get(architecture or "", ()) or SCOPE_LAYERS.get(keras_model.name, ())
    if wanted and all(name in names for name in wanted):
        return list(wanted)
    return _layers_by_resolution(keras_model)


def _layers_by_resolution(keras_model, most: int = 2) -> list[str]:
    """The last 4-D layer at each spatial resolution below the input's, deepest `most`."""
    input_side = keras_model.inputs[0].shape[1]
    last_at: dict[int, str] = {}
    for layer in keras_model.layers:
        shape = getattr(layer, "output", None)
        shape = getattr(shape, "shape", None)
        if shape is None or len(shape) != 4 or layer.__class__.__name__ == "InputLayer":
            continue
        side = shape[1]
        if side is not None and (side < input_side or not last_at):
            last_at[side] = layer.name
    if not last_at:
        raise ValueError(f"model {keras_model.name!r} has no convolutional layer for the scope check")
    return [last_at[side] for side in sorted(last_at, reverse=True)][-most:]


def scope_feature_model(keras_model, layers: list[str]):
    """One Keras model: input -> [probability (N, 1), pooled features per layer (N, 2C)].

    Pooling is the per-channel mean and standard deviation over the grid: the
    mean says what is there, the spread how it is laid out.
    """
    import keras

    return keras.Model(keras_model.inputs, [keras_model.outputs[0], *pooled_features(keras_model, layers)],
                       name=f"{keras_model.name}_with_scope")


def pooled_features(keras_model, layers: list[str]) -> list:
    """The pooled-feature tensors (N, 2C) of `layers`, in the model's own graph
    (so another pass, such as Grad-CAM's, can compute them too)."""
    import keras
    from keras import ops

    def pooled(tensor):
        mean = ops.mean(tensor, axis=(1, 2))
        spread = ops.sqrt(ops.maximum(ops.mean(ops.square(tensor), axis=(1, 2)) - ops.square(mean), 0.0) + 1e-6)
        return ops.concatenate([mean, spread], axis=-1)

    tensors = []
    for name in layers:
        try:
            layer = keras_model.get_layer(name)
        except ValueError:
            raise ValueError(f"model {keras_model.name!r} has no layer {name!r} for the scope check") from None
        tensors.append(keras.layers.Lambda(pooled, name=f"scope_pool_{len(tensors) + 1}")(layer.output))
    return tensors


def compile_scope_forward(keras_model, layers: list[str]):
    """A tf.function: (N, S, S, 1) float32 -> (probabilities (N,), [features (N, D_l) per layer])."""
    import tensorflow as tf

    model = scope_feature_model(keras_model, layers)
    spec = tf.TensorSpec((None, *keras_model.inputs[0].shape[1:]), tf.float32)

    @tf.function(input_signature=[spec])
    def forward(x):
        outputs = model(x, training=False)
        return tf.reshape(outputs[0], (-1,)), outputs[1:]

    def run(batch: np.ndarray):
        probs, feats = forward(np.asarray(batch, dtype=np.float32))
        return probs.numpy().astype(np.float64), [f.numpy().astype(np.float64) for f in feats]

    return run


def image_statistics(batch: np.ndarray) -> np.ndarray:
    """Cheap content features of model inputs (N, S, S, 1) in [0, 1] -> (N, D).

    - layout: a 16x16 thumbnail (where bright and dark lie: lungs, mediastinum,
      diaphragm, borders);
    - intensity and texture: a histogram, mean and spread, and edge strength
      along rows and columns at three scales (noise, text and photos differ
      from radiographs most here).
    One Gaussian over both: on the v1 models, two separate blocks caught fewer
    upside-down chests (the sum over more blocks dilutes each one's evidence).
    """
    import cv2  # OpenCV's reductions are several times faster than NumPy's here

    images = np.asarray(batch, dtype=np.float32)[..., 0]
    n, side = images.shape[0], images.shape[1]
    thumbs = np.empty((n, THUMBNAIL * THUMBNAIL), np.float32)
    hist = np.empty((n, HISTOGRAM_BINS), np.float32)
    texture = np.empty((n, 2 + 2 * TEXTURE_SCALES), np.float32)
    for i, image in enumerate(images):
        thumbs[i] = cv2.resize(image, (THUMBNAIL, THUMBNAIL), interpolation=cv2.INTER_AREA).ravel()
        hist[i] = cv2.calcHist([image], [0], None, [HISTOGRAM_BINS], [0.0, 1.0 + 1e-6]).ravel()
        mean, spread = cv2.meanStdDev(image)
        texture[i, :2] = mean[0, 0], spread[0, 0]
        level = image
        for scale in range(TEXTURE_SCALES):  # mean |step| along rows and columns, then halve
            texture[i, 2 + 2 * scale] = cv2.absdiff(level[:, 1:], level[:, :-1]).mean()
            texture[i, 3 + 2 * scale] = cv2.absdiff(level[1:], level[:-1]).mean()
            half = level.shape[0] // 2
            level = cv2.resize(level[:2 * half, :2 * half], (half, half), interpolation=cv2.INTER_AREA)
    intensity = np.concatenate([np.sqrt(hist / float(side * side)), np.log(texture + 1e-4)], axis=1)
    return np.concatenate([thumbs, intensity], axis=1).astype(np.float64)


# ------------------------------------------------------------- detector

@dataclass
class ScopeDetector:
    layers: list[str]  # model layers pooled, in feature order; IMAGE_STATS always follows
    blocks: list  # GaussianBlock or ClassGaussians, one per layer, then the image statistics
    threshold: float
    false_flag_rate: float  # of the whole detector (both criteria) on held-out training images
    counts: dict = field(default_factory=dict)  # fit / held-out image counts
    heldout_flag_rate: float = float("nan")
    layout: LayoutCheck | None = None  # None in detectors saved before it existed

    @property
    def block_names(self) -> list[str]:
        return [*self.layers, IMAGE_STATS]

    def scores(self, layer_features: list[np.ndarray], batch: np.ndarray) -> np.ndarray:
        """Higher = less like the training images; > threshold = out of scope."""
        blocks = [*layer_features, image_statistics(batch)]
        if len(blocks) != len(self.blocks):
            raise ValueError(f"scope detector expects {len(self.blocks)} feature blocks, got {len(blocks)}")
        with single_threaded_blas():
            return np.sum([block.standardised(f) for block, f in zip(self.blocks, blocks)], axis=0)

    def flags(self, scores: np.ndarray) -> np.ndarray:
        """The Mahalanobis criterion alone (see `assess` for the whole check)."""
        return np.asarray(scores) > self.threshold

    def assess(self, layer_features: list[np.ndarray], batch: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """(Mahalanobis scores, reason per image: "" when in scope).

        A chest X-ray that passes the layout check once turned back is said to
        be "rotated or upside down" (the turn also makes its features unusual).
        Otherwise "unlike the training images" comes first: a layout verdict
        ("rotated") on, say, a document would name the wrong problem.
        """
        scores = self.scores(layer_features, batch)
        reasons = [UNFAMILIAR if flag else "" for flag in self.flags(scores)]
        if self.layout is not None:
            # A turned-back image must also look like a radiograph by its pixels alone (no second model pass).
            def plausible(undone):
                return self.blocks[-1].standardised(image_statistics(undone)) <= self.threshold

            layout_reasons, turned_back = self.layout.judge(batch, plausible)
            reasons = [layout if turned else (reason or layout)
                       for reason, layout, turned in zip(reasons, layout_reasons, turned_back)]
        return scores, reasons

    def summary(self) -> dict:
        """What the model card records (plain JSON)."""
        return {
            "method": "sum of standardised Mahalanobis distances (Ledoit-Wolf shrinkage"
                      + ("; layer blocks class-conditional, nearest class" if any(
                          isinstance(b, ClassGaussians) for b in self.blocks) else "")
                      + ") over mean+std pooled layer features and image statistics; fitted on training images only"
                      + ("; plus a layout check (turned, flipped, cropped closer, widened)" if self.layout else ""),
            "layers": list(self.layers), "blocks": self.block_names,
            "false_flag_rate": self.false_flag_rate, "threshold": self.threshold,
            "heldout_flag_rate": self.heldout_flag_rate, **self.counts,
            "block_dims": [int(members(b)[0].mean.shape[0]) for b in self.blocks],
            "components": [int(members(b)[0].components.shape[0]) for b in self.blocks],
            "gaussians_per_block": [len(members(b)) for b in self.blocks],
            **({"layout": self.layout.summary()} if self.layout else {}),
        }

    # --- persistence: plain arrays only
    def to_arrays(self) -> dict[str, np.ndarray]:
        arrays = {
            "layers": np.array(self.layers, dtype=np.str_),
            "threshold": np.array(self.threshold), "false_flag_rate": np.array(self.false_flag_rate),
            "heldout_flag_rate": np.array(self.heldout_flag_rate),
            "count_keys": np.array(list(self.counts), dtype=np.str_),
            "count_values": np.array([float(v) for v in self.counts.values()]),
        }
        for i, block in enumerate(self.blocks):
            if isinstance(block, ClassGaussians):
                arrays[f"b{i}_stats"] = np.array([np.nan, block.center, block.spread])
                arrays[f"b{i}_member_rest"] = np.array([m.rest_variance for m in block.members])
                for j, member in enumerate(block.members):
                    arrays.update(gaussian_arrays(f"b{i}m{j}", member))
            else:
                arrays.update(gaussian_arrays(f"b{i}", block))
                arrays[f"b{i}_stats"] = np.array([block.rest_variance, block.center, block.spread])
        if self.layout is not None:
            arrays.update(self.layout.to_arrays())
        return arrays

    @classmethod
    def from_arrays(cls, arrays) -> "ScopeDetector":
        layers = [str(name) for name in arrays["layers"]]
        blocks = []
        for i in range(len(layers) + 1):
            rest, center, spread = (float(v) for v in arrays[f"b{i}_stats"])
            if f"b{i}_member_rest" in arrays:
                members = [gaussian_from(arrays, f"b{i}m{j}", float(r))
                           for j, r in enumerate(arrays[f"b{i}_member_rest"])]
                blocks.append(ClassGaussians(members, center, spread))
            else:
                blocks.append(gaussian_from(arrays, f"b{i}", rest, center, spread))
        counts = {str(k): int(v) for k, v in zip(arrays["count_keys"], arrays["count_values"])}
        layout = LayoutCheck.from_arrays(arrays) if "layout_coef" in arrays else None
        return cls(layers, blocks, float(arrays["threshold"]), float(arrays["false_flag_rate"]),
                   counts, float(arrays["heldout_flag_rate"]), layout)

    def save(self, path: str | Path) -> None:
        with open(path, "wb") as fh:  # a file object: numpy must not append ".npz"
            np.savez_compressed(fh, **self.to_arrays())

    @classmethod
    def load(cls, path: str | Path) -> "ScopeDetector":
        try:
            with np.load(path, allow_pickle=False) as data:
                return cls.from_arrays({key: data[key] for key in data.files})
        except (OSError, ValueError, KeyError) as exc:
            raise ValueError(f"scope detector {Path(path).name} is unreadable: {exc}") from None


def extract_features(forward, images_uint8: np.ndarray, batch_size: int = 64):
    """Run `compile_scope_forward` over uint8 images (N, S, S, 1): (probabilities, feature blocks).

    The blocks are the layers' pooled features followed by the image statistics.
    """
    probs, per_block = [], None
    for start in range(0, len(images_uint8), batch_size):
        batch = np.asarray(images_uint8[start:start + batch_size], dtype=np.float32) / 255.0
        p, feats = forward(batch)
        probs.append(p)
        blocks = [*feats, image_statistics(batch)]
        per_block = [[] for _ in blocks] if per_block is None else per_block
        for sink, f in zip(per_block, blocks):
            sink.append(f)
    return np.concatenate(probs), [np.concatenate(f) for f in per_block]


def fit_from_features(layers: list[str], fit_blocks: list[np.ndarray], heldout_blocks: list[np.ndarray],
                      false_flag_rate: float = DEFAULT_FALSE_FLAG_RATE,
                      layout_images: tuple[np.ndarray, np.ndarray] | None = None,
                      fit_labels=None) -> ScopeDetector:
    """Fit each block's Gaussian on `fit_blocks`, standardise and threshold on `heldout_blocks`.

    With `fit_labels` (the fit images' classes) the layer blocks get one
    Gaussian per class (`ClassGaussians`); the image statistics keep one.
    With `layout_images` (the same fit and held-out images, uint8) the layout
    check is fitted too and the two criteria get half the false-flag rate each;
    `heldout_flag_rate` is then their union's.
    """
    if not 0.0 < false_flag_rate < 0.5:
        raise ValueError(f"false-flag rate must be within (0, 0.5), got {false_flag_rate}")
    n_fit, n_held = len(fit_blocks[0]), len(heldout_blocks[0])
    if n_fit < 20 or n_held < 10:
        raise ValueError(f"the scope check needs at least 20 training and 10 held-out images "
                         f"(got {n_fit} and {n_held})")
    own_rate = false_flag_rate / 2 if layout_images is not None else false_flag_rate
    blocks, combined = [], np.zeros(n_held)
    labels = None if fit_labels is None else np.asarray([str(label) for label in fit_labels])
    if labels is not None and len(labels) != n_fit:
        raise ValueError(f"{len(labels)} labels for {n_fit} fit images")
    for index, (fit_x, held_x) in enumerate(zip(fit_blocks, heldout_blocks)):
        block = fit_block(fit_x, labels if index < len(layers) else None)
        scaled = spread_scale(block.distance(held_x))
        block.center = float(np.median(scaled))
        # A robust spread (normal-consistent MAD), floored so one tight block cannot dominate.
        block.spread = max(float(1.4826 * np.median(np.abs(scaled - block.center))), 1e-6)
        blocks.append(block)
        combined += block.standardised(held_x)
    threshold = float(np.quantile(combined, 1.0 - own_rate, method="higher"))
    detector = ScopeDetector(list(layers), blocks, threshold, float(false_flag_rate),
                             {"fit_images": int(n_fit), "heldout_images": int(n_held)})
    flagged = detector.flags(combined)
    if layout_images is not None:
        fit_images, held_images = layout_images
        detector.layout = LayoutCheck.fit(fit_images, held_images, own_rate)
        flagged = flagged | (detector.layout.scores(held_images) > detector.layout.threshold)
    detector.heldout_flag_rate = float(np.mean(flagged))
    return detector


def heldout_patients(samples: list, fraction: float, seed: int) -> tuple[list, list]:
    """Training samples -> (to fit the Gaussians, held out to set scale and threshold),
    split by patient so held-out images never share a patient with the fitted ones.
    Labels are not needed (a split file may list paths only)."""
    patients = sorted({s.patient for s in samples})
    if len(patients) < 2:
        raise ValueError("the scope check needs training images of at least two patients")
    rng = np.random.default_rng(seed)
    count = min(len(patients) - 1, max(1, round(len(patients) * fraction)))
    held = set(rng.choice(patients, count, replace=False).tolist())
    return [s for s in samples if s.patient not in held], [s for s in samples if s.patient in held]


def fit_scope_detector(keras_model, train_images_uint8: np.ndarray, heldout_images_uint8: np.ndarray,
                       false_flag_rate: float = DEFAULT_FALSE_FLAG_RATE, architecture: str | None = None,
                       batch_size: int = 64, train_labels=None) -> ScopeDetector:
    """Fit the content detector on a model's own training images (uint8 (N, S, S, 1)).

    `train_labels` (their classes, optional) make the layer Gaussians class-conditional.

    `heldout_images_uint8` are training-distribution images the Gaussians did
    not see (e.g. other training patients): they set each block's scale and the
    threshold for `false_flag_rate`. Never pass validation or out-of-scope images.
    """
    layers = scope_layers(keras_model, architecture)
    forward = compile_scope_forward(keras_model, layers)
    _, fit_blocks = extract_features(forward, train_images_uint8, batch_size)
    _, held_blocks = extract_features(forward, heldout_images_uint8, batch_size)
    return fit_from_features(layers, fit_blocks, held_blocks, false_flag_rate,
                             layout_images=(train_images_uint8, heldout_images_uint8), fit_labels=train_labels)
