"""Tiny Keras models and stand-ins for core.models.registry.LoadedModel (engine tests).

Kept tiny (32-64 px, a few thousand weights) because the test machine has two
cores shared with background training.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np


@dataclass
class FakeCard:
    name: str = "tiny"
    version: str = "1"
    input_size: int = 32
    threshold: float = 0.5
    gradcam_layer: str = "last_conv"
    architecture: str = "tiny_cnn"


@dataclass
class FakeLoadedModel:
    """Same attributes as core.models.registry.LoadedModel."""
    keras_model: object
    card: FakeCard = field(default_factory=FakeCard)

    @property
    def name(self):
        return self.card.name

    @property
    def version(self):
        return self.card.version

    @property
    def input_size(self):
        return self.card.input_size

    @property
    def threshold(self):
        return self.card.threshold

    @property
    def sha256(self):
        return hashlib.sha256(f"{self.card.name}-{self.card.version}".encode()).hexdigest()


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
