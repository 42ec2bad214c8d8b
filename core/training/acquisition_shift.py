"""Acquisition-shifted copies of held-out images, and test-time augmentation.

Internal validation AUROC saturates (~0.998), so it cannot tell recipes apart.
These fixed, deterministic alterations imitate how another site's films differ
(exposure curve, contrast, detector blur and noise, framing and aspect ratio);
a recipe that holds its AUROC on them is more likely to hold it at a new site.
Some overlap the training augmentation (gamma, blur, noise): the copies measure
robustness to them, not novelty. Everything works on the uint8 cache
(N, S, S, 1) and returns the same shape, so any model scores the copies through
the same compiled forward pass as the originals.
"""
from __future__ import annotations

import cv2
import numpy as np


def _gamma(image: np.ndarray, gamma: float) -> np.ndarray:
    x = image.astype(np.float32) / 255.0
    return np.round(255.0 * x ** gamma).astype(np.uint8)


def _washed_out(image: np.ndarray) -> np.ndarray:
    """A window wider than the data: values squeezed into 25..75 % of the range."""
    x = image.astype(np.float32)
    return np.round(64.0 + x * 0.5).astype(np.uint8)


def _blur_noise(image: np.ndarray, seed: int) -> np.ndarray:
    x = cv2.GaussianBlur(image.astype(np.float32), (0, 0), 1.5)
    x = x + np.random.default_rng(seed).normal(0.0, 8.0, x.shape)
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def _reframe(image: np.ndarray, keep_rows: float, keep_cols: float) -> np.ndarray:
    """Centre crop keeping these shares of rows/columns, resized back (aspect changes when they differ)."""
    size = image.shape[0]
    rows, cols = max(8, round(size * keep_rows)), max(8, round(size * keep_cols))
    top, left = (size - rows) // 2, (size - cols) // 2
    return cv2.resize(image[top:top + rows, left:left + cols], (size, size), interpolation=cv2.INTER_AREA)


def _padded_wider(image: np.ndarray) -> np.ndarray:
    """A film that shows more around the chest: shrunk to 85 % with a dark border."""
    size = image.shape[0]
    inner = round(size * 0.85)
    out = np.zeros_like(image)
    start = (size - inner) // 2
    out[start:start + inner, start:start + inner] = cv2.resize(image, (inner, inner), interpolation=cv2.INTER_AREA)
    return out


SHIFTS = {
    "gamma_dark": lambda img, i: _gamma(img, 1.6),
    "gamma_bright": lambda img, i: _gamma(img, 0.6),
    "washed_out": lambda img, i: _washed_out(img),
    "blur_noise": lambda img, i: _blur_noise(img, i),
    "closer_crop": lambda img, i: _reframe(img, 0.82, 0.82),
    "taller_aspect": lambda img, i: _reframe(img, 1.0, 0.8),
    "padded_wider": lambda img, i: _padded_wider(img),
}

# Test-time augmentation: mild views averaged (mean probability); no flips (anatomy is not mirrored).
TTA_VIEWS = {
    "identity": lambda img, i: img,
    "zoom_in": lambda img, i: _reframe(img, 0.92, 0.92),
    "gamma_0.8": lambda img, i: _gamma(img, 0.8),
    "gamma_1.25": lambda img, i: _gamma(img, 1.25),
}


def shifted(cache: np.ndarray, name: str, table: dict = SHIFTS) -> np.ndarray:
    """The cache (N, S, S, 1) uint8 altered by the named shift (deterministic per image index)."""
    if name not in table:
        raise ValueError(f"unknown shift {name!r}; choose one of {', '.join(table)}")
    fn = table[name]
    return np.stack([fn(cache[i, ..., 0], i)[..., None] for i in range(len(cache))]) if len(cache) else cache
