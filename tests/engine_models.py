"""Tiny Keras models wrapped as real core.models.registry.LoadedModel records (engine tests).

Kept tiny (32-64 px, a few thousand weights) because the test machine has two
cores shared with background training.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np


def loaded_tiny(keras_model, name: str = "tiny", version: int = 1, input_size: int = 32,
                threshold: float = 0.5):
    """A real core.models.registry.LoadedModel around a tiny network (no file on disk)."""
    from core.models.registry import LoadedModel, ModelCard

    digest = hashlib.sha256(f"{name}-{version}".encode()).hexdigest()
    card = ModelCard(name=name, architecture="tiny_cnn", version=version, input_size=input_size,
                     threshold=threshold, sha256=digest)
    return LoadedModel(keras_model, card)


def tiny_cnn(size: int = 32, seed: int = 0, filters: int = 8, conv_name: str = "last_conv"):
    """Input (S, S, 1) in [0, 1] -> conv 'last_conv' -> GAP -> Dense(1, sigmoid)."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 1))
    x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name=conv_name)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(1, activation="sigmoid")(x)
    return keras.Model(inputs, outputs, name="tiny_cnn")


def write_images(folder: Path, count: int, size: int = 48, seed: int = 0, suffix: str = ".png") -> list[Path]:
    """Random grey images on disk (PNG or JPEG by suffix)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        path = folder / f"img_{i:03d}{suffix}"
        cv2.imwrite(str(path), rng.integers(0, 256, (size, size + 8), dtype=np.uint8))
        paths.append(path)
    return paths


def save_tiny_model(directory: Path, name: str = "tiny", size: int = 32, threshold: float = 0.5, seed: int = 0,
                    conv_name: str = "last_conv"):
    """A tiny CNN registered through core.models.registry (`.keras` + card); returns the ModelEntry."""
    from core.models.registry import ModelCard, save_model

    card = ModelCard(name=name, architecture="tiny_cnn", version=1, input_size=size, threshold=threshold)
    return save_model(tiny_cnn(size, seed=seed, conv_name=conv_name), card, directory=directory)
