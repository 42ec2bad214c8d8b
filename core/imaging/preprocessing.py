"""Turns loader pixels into a model input: the film inside its blank borders
(core.imaging.borders), resized. Scaling and channel replication live inside each
model's graph (see core.models.architectures)."""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from core.imaging.borders import ContentBox, find_content_box

# What a model is shown of a file, numbered, and recorded with every stored result
# (core.reading.store), so a result says how its film was prepared. Bump it whenever
# `load_for_model` changes the pixels a model sees.
#   1  the whole frame squashed to the square input (PneumoScan up to 0.4.0)
#   2  the film inside its blank borders, squashed (0.4.1 on)
FILM_PREPARATION = 2
FILM_PREPARATIONS = {
    1: "whole frame (up to 0.4.0)",
    2: "blank borders trimmed (0.4.1 on)",
}


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


def film_to_model_input(pixels: np.ndarray, size: int) -> tuple[np.ndarray, ContentBox]:
    """Loader pixels -> (model input of the film inside its blank borders, that box)."""
    box = find_content_box(pixels)
    return to_model_input(box.crop(pixels), size), box


def to_uint8(model_input: np.ndarray) -> np.ndarray:
    """Compact cache form of a model input (training keeps 5k images in memory)."""
    return np.round(model_input * 255.0).astype(np.uint8)


def from_uint8(cached: np.ndarray) -> np.ndarray:
    return cached.astype(np.float32) / 255.0


# Decode at about twice the model input: enough detail for a clean INTER_AREA
# reduction, and it lets the loader use its fast reduced-JPEG decode.
LOAD_MAX_SIDE_FACTOR = 2


def load_for_model(path, size: int):
    """Load a file the way screening and training both must: -> (input, LoadedImage).

    The LoadedImage keeps the whole frame (what the reader sees); its `content_box` says
    which part the model saw, so a heatmap can be put back in place.
    """
    from core.imaging.loader import load_image

    loaded = load_image(path, max_side=size * LOAD_MAX_SIDE_FACTOR)
    x, box = film_to_model_input(loaded.pixels, size)
    if not box.is_whole:
        loaded = dataclasses.replace(loaded, content_box=box.fractions())
    return x, loaded
