"""A model's card (its JSON passport: provenance, threshold, calibration, scope check, metrics)
and the records the registry hands out for a model file."""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from core.models.architectures import GRADCAM_LAYER

CARD_SUFFIX = ".json"
MODEL_SUFFIX = ".keras"


class ModelError(Exception):
    """A model that cannot be found, verified or loaded."""


@dataclass
class ModelCard:
    name: str
    architecture: str
    version: int = 1
    created: str = ""
    input_size: int = 224
    threshold: float = 0.5
    gradcam_layer: str = GRADCAM_LAYER
    # Absolute heat scale (core.models.gradcam): the median raw-map peak on validation positives
    # (0: none fitted, maps fall back to per-image peaks). Older cards' `fine_cam` (the removed
    # Fine map, issue 21) is ignored when read.
    gradcam_reference: float = 0.0
    training_command: str = ""
    training_data: dict = field(default_factory=dict)
    validation_metrics: dict = field(default_factory=dict)
    sha256: str = ""
    notes: str = ""
    # Calibration: every shown or thresholded probability is
    # core.models.calibration.apply_temperature(raw, temperature); threshold is on that scale.
    temperature: float = 1.0
    calibration: dict = field(default_factory=dict)  # how T was fitted, ECE/Brier before/after
    # Scope check (core.models.scope): detector file next to the model, its statistics and threshold.
    scope_detector: dict = field(default_factory=dict)
    # What the model is for: population, intended use, known limits (shown in the GUI).
    intended_use: dict = field(default_factory=dict)
    site_validation: dict = field(default_factory=dict)  # metrics on a site's own labelled set

    @classmethod
    def from_json(cls, text: str) -> "ModelCard":
        data = json.loads(text)
        known = {f.name for f in dataclasses.fields(cls)}
        missing = {"name", "architecture", "sha256"} - data.keys()
        if missing:
            raise ModelError(f"model card lacks {', '.join(sorted(missing))}")
        return cls(**{k: v for k, v in data.items() if k in known})

    @property
    def label(self) -> str:
        """How people see a model version: "name vN"."""
        return f"{self.name} v{self.version}"

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=False) + "\n"


@dataclass
class ModelEntry:
    card: ModelCard
    keras_path: Path
    shipped: bool

    @property
    def card_path(self) -> Path:
        return self.keras_path.with_suffix(CARD_SUFFIX)

    @property
    def label(self) -> str:
        return self.card.label


@dataclass
class LoadedModel:
    keras_model: object
    card: ModelCard
    entry: ModelEntry | None = None
    scope_detector: object = None  # core.models.scope.ScopeDetector from the sidecar file, None when absent

    name = property(lambda self: self.card.name)
    version = property(lambda self: self.card.version)
    sha256 = property(lambda self: self.card.sha256)
    input_size = property(lambda self: self.card.input_size)
    threshold = property(lambda self: self.card.threshold)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
