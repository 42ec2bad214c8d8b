"""Training-time augmentation, in NumPy/OpenCV on the uint8 cache.

Two families, both drawn per image:
- positioning: small rotation, shift, zoom and aspect change (no flip: the
  heart sits on the left; a mirrored chest is anatomy no scanner produces);
- acquisition: what changes between sites and exports without changing the
  finding: gamma, contrast/brightness, a compressed (washed-out) window,
  blur, noise, JPEG re-compression and down-and-up resampling.

NumPy/OpenCV rather than Keras layers so the same code serves any Keras
backend (the CLI trains on TensorFlow; a GPU box may run JAX) and so the
heavy work releases the GIL for the loader threads.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

LEVELS = ("none", "basic", "acquisition")


def _affine(rng: np.random.Generator, size: int) -> np.ndarray:
    angle = math.radians(rng.uniform(-8.0, 8.0))
    scale = rng.uniform(0.9, 1.12)
    aspect = rng.uniform(0.9, 1.1)
    sx, sy = scale * math.sqrt(aspect), scale / math.sqrt(aspect)
    shift = rng.uniform(-0.06, 0.06, size=2) * size
    c = (size - 1) / 2.0
    cos, sin = math.cos(angle), math.sin(angle)
    linear = np.array([[cos, -sin], [sin, cos]]) @ np.diag([sx, sy])
    offset = np.array([c, c]) + shift - linear @ np.array([c, c])
    return np.hstack([linear, offset[:, None]]).astype(np.float32)


def _acquisition(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """x: float32 (H, W) in [0, 1]."""
    size = x.shape[0]
    if rng.random() < 0.3:  # a lower-resolution detector or a downsized export
        factor = rng.uniform(0.35, 0.85)
        small = max(8, int(round(size * factor)))
        x = cv2.resize(cv2.resize(x, (small, small), interpolation=cv2.INTER_AREA), (size, size),
                       interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.25:
        x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.3, 1.2))
    elif rng.random() < 0.1:  # unsharp masking, as some CR processing does
        x = x + rng.uniform(0.3, 1.0) * (x - cv2.GaussianBlur(x, (0, 0), 2.0))
    x = np.clip(x, 0.0, 1.0)
    if rng.random() < 0.5:
        x = x ** math.exp(rng.uniform(math.log(0.6), math.log(1.6)))
    if rng.random() < 0.5:
        x = (x - 0.5) * rng.uniform(0.75, 1.3) + 0.5 + rng.uniform(-0.1, 0.1)
    if rng.random() < 0.2:  # a window wider than the data: compressed, washed out
        low = rng.uniform(0.0, 0.3)
        x = low + x * (rng.uniform(0.7, 1.0) - low)
    if rng.random() < 0.3:
        x = x + rng.normal(0.0, rng.uniform(0.005, 0.04), x.shape).astype(np.float32)
    x = np.clip(x, 0.0, 1.0)
    if rng.random() < 0.3:
        ok, encoded = cv2.imencode(".jpg", np.round(x * 255).astype(np.uint8),
                                   [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(25, 91))])
        if ok:
            x = cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255.0
    return x


def augment(image_u8: np.ndarray, rng: np.random.Generator, level: str = "acquisition") -> np.ndarray:
    """One cached image (S, S, 1) uint8 -> augmented (S, S, 1) float32 in [0, 1]."""
    return _augmented(image_u8, rng, level, None)[0]


def augment_with_mask(image_u8: np.ndarray, mask: np.ndarray, rng: np.random.Generator,
                      level: str = "acquisition") -> tuple[np.ndarray, np.ndarray]:
    """`augment`, with a 0/1 mask (S, S) of the same image moved by the same positioning
    (acquisition changes leave it alone): (image as `augment` gives it for this rng, float32 mask)."""
    return _augmented(image_u8, rng, level, mask)


def _augmented(image_u8, rng, level, mask):
    if level not in LEVELS:
        raise ValueError(f"unknown augmentation level {level!r}; choose one of {', '.join(LEVELS)}")
    img = image_u8[..., 0] if image_u8.ndim == 3 else image_u8
    mask = None if mask is None else np.asarray(mask, np.float32)
    if level == "none":
        return (img.astype(np.float32) / 255.0)[..., None], mask
    size = img.shape[0]
    matrix = _affine(rng, size)
    warped = cv2.warpAffine(img, matrix, (size, size), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    if mask is not None:
        mask = cv2.warpAffine(mask, matrix, (size, size), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    x = warped.astype(np.float32) / 255.0
    if level == "acquisition":
        x = _acquisition(x, rng)
    else:
        x = np.clip((x - 0.5) * rng.uniform(0.8, 1.2) + 0.5 + rng.uniform(-0.1, 0.1), 0.0, 1.0)
    return x[..., None].astype(np.float32), mask
