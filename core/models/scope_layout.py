"""The scope check's layout part: is this chest X-ray laid out like the training films?

A multinomial logistic regression on 24x24 layouts tells a training image as
it is from the same image rotated, flipped, cropped closer or widened
(self-supervised geometric transforms, after Golan & El-Yaniv 2018): no
out-of-scope image is needed to fit it. Its score is -log P(as it is). A
chest X-ray that is not upright, or whose chest fills more of the frame or
looks wider than in the training films (older patients, tight collimation,
square or portrait films squashed to the model's square input), is not "as
it is", although the Gaussian criterion of `core.models.scope` may still find its
features familiar. Plain arrays, applied in NumPy; Qt-free.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ORIENTATION = "rotated or upside down"
FRAMING = "chest fills the frame more than in training (older patient?)"
LAYOUT_SIDE = 24  # layout thumbnail side: position of lungs, heart, diaphragm, shoulders
LAYOUT_REGULARISATION = 0.1  # inverse L2 strength of the layout classifier (sklearn's C)
# Transforms the layout classifier learns to recognise, with what an image that
# looks transformed is said to be. "closer": a crop of 55-90 % of the side;
# "wider": of 60-85 % of the width. The training films are landscape (median
# width/height 1.29 in fullres_sample) squashed to a square; a square or
# portrait adult film squashed the same way shows a chest 1.3-1.6x wider.
LAYOUT_CLASSES = ("as_trained", "rotated_180", "flipped_vertical", "rotated_90", "rotated_270", "closer", "wider")
LAYOUT_REASONS = {"rotated_180": ORIENTATION, "flipped_vertical": ORIENTATION, "rotated_90": ORIENTATION,
                  "rotated_270": ORIENTATION, "closer": FRAMING, "wider": FRAMING}


def layout_thumbnails(batch: np.ndarray, side: int = LAYOUT_SIDE) -> np.ndarray:
    """Model inputs (N, S, S, 1) in [0, 1] (or uint8 images) -> (N, side*side) area-averaged layouts."""
    import cv2

    images = np.asarray(batch)[..., 0]
    scale = 255.0 if images.dtype == np.uint8 else 1.0
    return np.stack([cv2.resize(image.astype(np.float32) / scale, (side, side), interpolation=cv2.INTER_AREA).ravel()
                     for image in images]).astype(np.float64) if len(images) else np.zeros((0, side * side))


def _closer(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random crop of 55-90 % of the side (aspect 0.8-1.25), resized back: the thorax fills more."""
    import cv2

    side = image.shape[0]
    fraction, aspect = rng.uniform(0.55, 0.9), rng.uniform(0.8, 1.25)
    h, w = int(side * fraction * min(1.0, aspect)), int(side * fraction * min(1.0, 1.0 / aspect))
    y, x = int(rng.integers(0, side - h + 1)), int(rng.integers(0, side - w + 1))
    return cv2.resize(image[y:y + h, x:x + w], (side, side), interpolation=cv2.INTER_LINEAR)


def _wider(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A full-height crop of 60-85 % of the width, resized back: the chest looks wider."""
    import cv2

    side = image.shape[1]
    w = int(side * rng.uniform(0.6, 0.85))
    x = int(rng.integers(0, side - w + 1))
    return cv2.resize(image[:, x:x + w], (side, image.shape[0]), interpolation=cv2.INTER_LINEAR)


_LAYOUT_TRANSFORMS = {
    "as_trained": lambda image, rng: image,
    "rotated_180": lambda image, rng: image[::-1, ::-1],
    "flipped_vertical": lambda image, rng: image[::-1],
    "rotated_90": lambda image, rng: np.rot90(image),
    "rotated_270": lambda image, rng: np.rot90(image, 3),
    "closer": _closer,
    "wider": _wider,
}


# The transform that undoes each turn.
_TURN_BACK = {"rotated_180": "rotated_180", "flipped_vertical": "flipped_vertical",
              "rotated_90": "rotated_270", "rotated_270": "rotated_90"}


def transformed_layouts(images_uint8: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Every training image under every LAYOUT_CLASSES transform: (layouts, class index)."""
    rng = np.random.default_rng(seed)
    images = np.asarray(images_uint8)[..., 0]
    layouts, labels = [], []
    for k, name in enumerate(LAYOUT_CLASSES):
        transform = _LAYOUT_TRANSFORMS[name]
        layouts.append(layout_thumbnails(np.stack([np.ascontiguousarray(transform(i, rng)) for i in images])[..., None]))
        labels.append(np.full(len(images), k))
    return np.concatenate(layouts), np.concatenate(labels)


def _surprise(probabilities: np.ndarray) -> np.ndarray:
    """-log P(as trained): the layout score."""
    return -np.log(np.clip(probabilities[:, 0], 1e-300, 1.0))


@dataclass
class LayoutCheck:
    """Multinomial logistic regression on standardised layouts; plain arrays, applied in NumPy.

    Score = -log P(as trained): near 0 for an image laid out like the training
    images, large when it looks turned, flipped, cropped closer or widened.
    """
    mean: np.ndarray  # (D,)
    scale: np.ndarray  # (D,)
    coef: np.ndarray  # (K, D), rows in `classes` order
    intercept: np.ndarray  # (K,)
    threshold: float
    false_flag_rate: float
    side: int = LAYOUT_SIDE
    classes: tuple = LAYOUT_CLASSES  # those it was fitted with (a saved check keeps its own)

    @classmethod
    def fit(cls, fit_images_uint8: np.ndarray, heldout_images_uint8: np.ndarray, false_flag_rate: float,
            seed: int = 0) -> "LayoutCheck":
        from sklearn.linear_model import LogisticRegression

        x, y = transformed_layouts(fit_images_uint8, seed)
        mean, scale = x.mean(axis=0), np.maximum(x.std(axis=0), 1e-6)
        classifier = LogisticRegression(C=LAYOUT_REGULARISATION, max_iter=3000)
        classifier.fit((x - mean) / scale, y)
        if list(classifier.classes_) != list(range(len(LAYOUT_CLASSES))):
            raise ValueError("the layout check needs training images under every transform")
        check = cls(mean, scale, classifier.coef_.copy(), classifier.intercept_.copy(), float("inf"),
                    float(false_flag_rate))
        held = check.scores(heldout_images_uint8)
        check.threshold = float(np.quantile(held, 1.0 - false_flag_rate, method="higher"))
        return check

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        logits = ((layout_thumbnails(batch, self.side) - self.mean) / self.scale) @ self.coef.T + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        odds = np.exp(logits)
        return odds / odds.sum(axis=1, keepdims=True)

    def scores(self, batch: np.ndarray) -> np.ndarray:
        return _surprise(self.probabilities(batch))

    def reasons(self, batch: np.ndarray) -> list[str]:
        """"" or the reason of the most likely transform, per image."""
        return self.judge(batch)[0]

    def judge(self, batch: np.ndarray, plausible=None) -> tuple[list[str], np.ndarray]:
        """(reason per image, whether it is a turned image that passes once turned back).

        The second says "this is a chest X-ray, only turned": a document the
        classifier calls "rotated" still fails after the inverse turn, or else
        `plausible(turned-back images) -> bool array` (the detector's image
        statistics) rejects it.
        """
        probs = self.probabilities(batch)
        flagged = _surprise(probs) > self.threshold
        likeliest = probs[:, 1:].argmax(axis=1) + 1
        reasons = [LAYOUT_REASONS[self.classes[k]] if flag else "" for flag, k in zip(flagged, likeliest)]
        turned_back = np.zeros(len(reasons), bool)
        for k, name in enumerate(self.classes):
            rows = np.flatnonzero(flagged & (likeliest == k))
            if len(rows) and name in _TURN_BACK:
                undo = _LAYOUT_TRANSFORMS[_TURN_BACK[name]]
                undone = np.stack([np.ascontiguousarray(undo(image, None)) for image in np.asarray(batch)[rows]])
                passes = self.scores(undone) <= self.threshold
                turned_back[rows] = passes & plausible(undone) if plausible is not None else passes
        return reasons, turned_back

    def summary(self) -> dict:
        return {"method": "multinomial logistic regression on 24x24 layouts of the training images, "
                          "as they are against turned, flipped, cropped closer and widened; score -log P(as they are)",
                "classes": list(self.classes), "side": self.side,
                "threshold": self.threshold, "false_flag_rate": self.false_flag_rate}

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"layout_mean": self.mean, "layout_scale": self.scale, "layout_coef": self.coef,
                "layout_intercept": self.intercept, "layout_classes": np.array(self.classes, dtype=np.str_),
                "layout_stats": np.array([self.threshold, self.false_flag_rate, self.side])}

    @classmethod
    def from_arrays(cls, arrays) -> "LayoutCheck":
        classes = tuple(str(c) for c in arrays["layout_classes"])
        if not classes or classes[0] != LAYOUT_CLASSES[0] or not set(classes[1:]) <= set(LAYOUT_REASONS):
            raise ValueError(f"its layout classes {list(classes)} are not known to this version")
        threshold, rate, side = (float(v) for v in arrays["layout_stats"])
        return cls(*(arrays[f"layout_{k}"].astype(np.float64) for k in ("mean", "scale", "coef", "intercept")),
                   threshold, rate, int(side), classes)
