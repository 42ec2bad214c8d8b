"""A training run's settings, outcome and folder: what `train`, `--resume` and
`--finalise` share (config.json, split.json, state.json and the checkpoints)."""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

MIN_PER_CLASS = 10


class TrainingError(Exception):
    """Training cannot start or go on (too few images, bad settings...)."""


class TrainingCancelled(Exception):
    """The user cancelled; nothing was saved to the registry."""


@dataclass
class TrainConfig:
    folder: str | None
    arch: str = "custom_cnn"
    name: str = "custom_cnn"
    epochs: int = 20
    batch_size: int = 32
    lr: float = 1e-3
    val_fraction: float = 0.15
    seed: int = 0
    init: str = "random"  # random | imagenet | a registered model name or .keras path
    target_sensitivity: float = 0.97
    input_size: int = 224
    augment: bool = True
    # v2 recipe: per-image percentile stretch in the graph, acquisition-shift augmentation.
    standardise: bool = True
    augment_level: str = "acquisition"  # none | basic | acquisition (core.training.augmentation)
    label_smoothing: float = 0.0
    mixup_alpha: float = 0.0  # > 0: mixup (Zhang et al. 2018) within each batch, Beta(alpha, alpha)
    lung_focus: float = 0.0  # > 0: penalty weight on CAM evidence outside the lung fields (core.training.lung_focus)
    class_weighting: bool = True
    patience: int = 6
    weight_decay: float = 1e-4
    extra_samples: list = field(default_factory=list)  # [(path, label)] e.g. reader decisions
    run_dir: str | None = None
    command: str = ""  # the exact command, recorded in the card


@dataclass
class TrainOutcome:
    keras_model: object
    card: object  # core.models.registry.ModelCard, not yet saved
    val_labels: np.ndarray
    val_probs: np.ndarray
    val_paths: list
    history: list
    run_dir: Path
    unreadable: list  # [(path, message)]
    scope_detector: object = None  # core.models.scope detector fitted on the training images, if any


BatchCallback = Callable[[int, int, int, dict], None]  # epoch, batch, steps, logs
EpochCallback = Callable[[int, dict], None]  # epoch, logs (loss, val_loss, val_auroc, ...)


# ---------------------------------------------------------------- run folder
def atomic_json(path: Path, data) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    os.replace(tmp, path)


def atomic_save(model, path: Path) -> None:
    tmp = path.with_name(".tmp-" + path.name)
    model.save(tmp)
    os.replace(tmp, path)


def new_run_dir(config: TrainConfig) -> Path:
    from core import paths

    stamp = time.strftime("%Y%m%d-%H%M%S")
    run = Path(config.run_dir) if config.run_dir else paths.training_runs_dir() / f"{config.name}-{stamp}"
    run.mkdir(parents=True, exist_ok=True)
    return run


def load_run_config(run_dir: str | Path) -> TrainConfig:
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise TrainingError(f"{run_dir} is not a training run folder (no config.json)")
    data = json.loads(path.read_text(encoding="utf-8"))
    config = TrainConfig(**data)
    config.run_dir = str(run_dir)
    return config

