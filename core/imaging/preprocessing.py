"""Turns loader pixels into a model input. Resizing only: scaling and channel
replication live inside each model's graph (see core.models.architectures)."""
from __future__ import annotations

import cv2
import numpy as np


def to_model_input(pixels: np.ndarray, size: int) -> np.ndarray:
    """Loader pixels (2-D float32 in [0, 1]) -> (size, size, 1) float32 in [0, 1].

    The aspect ratio is not kept: the training data were stored that way
    (224x224 squashed), so screening must squash the same way.
    """
    if pixels.ndim != 2:
        raise ValueError(f"expected a 2-D grey image, got shape {pixels.shape}")
    h, w = pixels.shape
    interp = cv2.INTER_AREA if (h > size or w > size) else cv2.INTER_LINEAR
    resized = cv2.resize(pixels.astype(np.float32, copy=False), (size, size), interpolation=interp)
    return np.clip(resized, 0.0, 1.0)[..., None]


def to_uint8(model_input: np.ndarray) -> np.ndarray:
    """Compact cache form of a model input (training keeps 5k images in memory)."""
    return np.round(model_input * 255.0).astype(np.uint8)


def from_uint8(cached: np.ndarray) -> np.ndarray:
    return cached.astype(np.float32) / 255.0


# Decode at about twice the model input: enough detail for a clean INTER_AREA
# reduction, and it lets the loader use its fast reduced-JPEG decode.
LOAD_MAX_SIDE_FACTOR = 2


def load_for_model(path, size: int):
    """Load a file the way screening and training both must: -> (input, LoadedImage)."""
    from core.imaging.loader import load_image

    loaded = load_image(path, max_side=size * LOAD_MAX_SIDE_FACTOR)
    return to_model_input(loaded.pixels, size), loaded
