"""Shared pieces for the training-wizard and model-manager tests.

Models are tiny (32-48 px compact CNN) and studies a few dozen images, because
the test machine has two cores shared with background training.
"""
from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtWidgets import QWidget

CURRENT_MODEL_NAME = "ward-model"
TRAIN_TIMEOUT_MS = 300_000


def save_current_model(home: Path, size: int = 48, name: str = CURRENT_MODEL_NAME):
    """A random-weight custom CNN registered in `home`'s user models (the "current" model)."""
    import keras

    from core.models.architectures import build_model
    from core.models.registry import ModelCard, save_model

    keras.utils.set_random_seed(3)
    card = ModelCard(name=name, architecture="custom_cnn", version=1, input_size=size, threshold=0.5,
                     validation_metrics={"auroc": 0.5}, notes="wizard tests: random weights")
    return save_model(build_model("custom_cnn", input_size=size), card, home / "models")


def write_fake_model(directory: Path, name: str, version: int = 1, architecture: str = "custom_cnn",
                     stem: str | None = None, auroc: float | None = 0.9) -> Path:
    """A card + placeholder .keras file: enough for listing, renaming and deleting
    (nothing loads it), and no TensorFlow start-up in the model-manager tests."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = stem or f"{name}-v{version}"
    (directory / f"{stem}.keras").write_bytes(b"placeholder")
    card = {"name": name, "architecture": architecture, "version": version,
            "created": "2024-05-01T10:00:00+00:00", "input_size": 224, "threshold": 0.42,
            "validation_metrics": {} if auroc is None else {"auroc": auroc}, "sha256": "0" * 64}
    path = directory / f"{stem}.json"
    path.write_text(json.dumps(card), encoding="utf-8")
    return path


class StubMainWindow(QWidget):
    """What open_training_wizard reads from the main window, and records what it asks back."""

    def __init__(self, study_folder=None, current_entry=None, store_path=None):
        super().__init__()
        self.study_folder = study_folder
        self.current_entry = current_entry
        self.store_path = store_path
        self.refreshed = 0
        self.selected: list[str] = []

    def refresh_models(self) -> None:
        self.refreshed += 1

    def select_model(self, label: str) -> None:
        self.selected.append(label)


def choose_settings(page, init: str = "random", arch: str = "custom_cnn", input_size: int = 32,
                    epochs: int = 1, batch_size: int = 8, val_fraction: float = 0.2) -> None:
    """Set the settings page's widgets as a user would (init first: it resets defaults)."""
    from core.models.architectures import ARCHITECTURES

    page.init_buttons[init].setChecked(True)
    if page.arch_combo.isEnabled():
        page.arch_combo.setCurrentIndex(ARCHITECTURES.index(arch))
    if page.size_spin.isEnabled():
        page.size_spin.setValue(input_size)
    page.epochs_spin.setValue(epochs)
    page.batch_spin.setValue(batch_size)
    page.val_spin.setValue(val_fraction)
    page.augment_check.setChecked(False)  # fewer ops per batch: faster on 2 busy cores
