"""Labelled tiny-image folders and an informative toy model for calibration tests."""
from __future__ import annotations

import cv2
import numpy as np

POSITIVES, NEGATIVES = 70, 45  # enough for a 97 % sensitivity target (core.training.metrics.evidence_shortfall)


def write_site_folder(folder, positives=POSITIVES, negatives=NEGATIVES, seed=0):
    """Tiny PNGs, pneumonia brighter on average (classes overlap); 2 images per patient."""
    rng = np.random.default_rng(seed)
    for label, count, mean in (("PNEUMONIA", positives, 150), ("NORMAL", negatives, 100)):
        (folder / label).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            image = np.clip(rng.normal(rng.normal(mean, 30), 20, (40, 44)), 0, 255).astype(np.uint8)
            name = f"person{i // 2}_bacteria_{i}.png" if label == "PNEUMONIA" else f"IM-{i // 2:04d}-{i:04d}.png"
            cv2.imwrite(str(folder / label / name), image)
    return folder


def brightness_model(size: int = 32, weight: float = 12.0, bias: float = -6.0):
    """p = sigmoid(weight * mean brightness + bias): an informative, over-confident toy model."""
    import keras

    inputs = keras.Input((size, size, 1))
    x = keras.layers.Conv2D(1, 1, use_bias=False, name="last_conv", trainable=False)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model(inputs, outputs)
    model.layers[1].set_weights([np.ones((1, 1, 1, 1), dtype="float32")])
    model.layers[-1].set_weights([np.array([[weight]], dtype="float32"), np.array([bias], dtype="float32")])
    return model


def save_brightness_model(directory, name="tiny", training_folder=None, **kw):
    from core.models.registry import ModelCard, save_model

    card = ModelCard(name=name, architecture="tiny_cnn", input_size=32, threshold=0.5,
                     training_data={"folder": str(training_folder)} if training_folder else {})
    return save_model(brightness_model(**kw), card, directory)
