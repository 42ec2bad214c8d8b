"""Model registry: a `.keras` file plus a JSON card with the same stem.

Shipped models live in `models/` (read-only); user-trained ones in the user
data folder. Cards carry provenance, threshold and validation metrics, and
the SHA-256 of the `.keras` file so a tampered or half-copied model is refused.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from core import paths
from core.models import GRADCAM_LAYER

DEFAULT_MODEL = "mobilenet_v2"
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
    training_command: str = ""
    training_data: dict = field(default_factory=dict)
    validation_metrics: dict = field(default_factory=dict)
    sha256: str = ""
    notes: str = ""
    # Calibration: every shown or thresholded probability is
    # core.calibration.apply_temperature(raw, temperature); threshold is on that scale.
    temperature: float = 1.0
    calibration: dict = field(default_factory=dict)  # how T was fitted, ECE/Brier before/after
    # Scope check (core.scope): detector file next to the model, its statistics and threshold.
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
    scope_detector: object = None  # core.scope.ScopeDetector from the sidecar file, None when absent

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


def _entries_in(directory: Path, shipped: bool) -> list[ModelEntry]:
    entries = []
    if not directory.is_dir():
        return entries
    for card_path in sorted(directory.glob(f"*{CARD_SUFFIX}")):
        keras_path = card_path.with_suffix(MODEL_SUFFIX)
        if not keras_path.is_file():
            continue
        try:
            card = ModelCard.from_json(card_path.read_text(encoding="utf-8"))
        except (OSError, ValueError, TypeError, ModelError):
            continue  # an unreadable card is not a model; `models` lists only usable ones
        entries.append(ModelEntry(card, keras_path, shipped))
    return entries


def list_models(user_dir: Path | None = None) -> list[ModelEntry]:
    """Shipped models first, then the user's, each sorted by file name."""
    return (_entries_in(paths.shipped_models_dir(), shipped=True)
            + _entries_in(user_dir or paths.user_models_dir(), shipped=False))


def entry_from_file(keras_path: str | Path) -> ModelEntry:
    keras_path = Path(keras_path)
    card_path = keras_path.with_suffix(CARD_SUFFIX)
    if not keras_path.is_file():
        raise ModelError(f"model file not found: {keras_path}")
    if not card_path.is_file():
        raise ModelError(f"model card not found next to the model: {card_path}")
    try:
        card = ModelCard.from_json(card_path.read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError) as exc:
        raise ModelError(f"model card {card_path} is unreadable: {exc}") from None
    shipped = keras_path.resolve().parent == paths.shipped_models_dir().resolve()
    return ModelEntry(card, keras_path, shipped)


def find_model(name: str | None = None) -> ModelEntry:
    """A model by name ("name", "name vN" or a .keras path); None -> the default.

    With several versions of a name, the newest version wins; user models win
    over shipped ones of the same name and version.
    """
    if name and (name.endswith(MODEL_SUFFIX) or os.sep in name or "/" in name):
        return entry_from_file(name)
    entries = list_models()
    if not entries:
        raise ModelError("no models are installed")
    if name is None:
        wanted = [e for e in entries if e.card.name == DEFAULT_MODEL] or entries
        return max(wanted, key=lambda e: (e.card.version, not e.shipped))
    version = None
    if " v" in name:
        base, _, v = name.rpartition(" v")
        if v.isdigit():
            name, version = base, int(v)
    matches = [e for e in entries if e.card.name == name and (version is None or e.card.version == version)]
    if not matches:
        known = ", ".join(sorted({e.label for e in entries}))
        raise ModelError(f"no model named {name!r} (available: {known})")
    return max(matches, key=lambda e: (e.card.version, not e.shipped))


def load_model(name_or_entry: "str | ModelEntry | None" = None, scope: bool = True) -> LoadedModel:
    """Verify and load a model (and, with `scope`, its scope detector sidecar)."""
    entry = name_or_entry if isinstance(name_or_entry, ModelEntry) else find_model(name_or_entry)
    actual = sha256_of(entry.keras_path)
    if actual != entry.card.sha256:
        raise ModelError(
            f"model {entry.label} does not match its card (SHA-256 {actual[:12]}… "
            f"!= {entry.card.sha256[:12]}…): the file was changed or damaged; refusing to load it")
    import keras  # lazy: keeps start-up fast

    try:
        model = keras.models.load_model(entry.keras_path, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises many types for a bad archive
        raise ModelError(f"model {entry.label} cannot be loaded: {exc}") from None
    return LoadedModel(model, entry.card, entry, load_scope_detector(entry) if scope else None)


def next_version(name: str) -> int:
    versions = [e.card.version for e in list_models() if e.card.name == name]
    return max(versions, default=0) + 1


def save_model(keras_model, card: ModelCard, directory: Path | None = None) -> ModelEntry:
    """Write `<name>-v<version>.keras` and its card atomically; fills sha256/created.

    Both files are written to temporary names in the target folder and renamed
    into place (card last), so a crash never leaves a model without a valid card.
    """
    directory = Path(directory).resolve() if directory else paths.user_models_dir()
    directory.mkdir(parents=True, exist_ok=True)
    shipped = directory == paths.shipped_models_dir().resolve()
    # Shipped models keep their plain name (the contract: models/mobilenet_v2.keras).
    stem = card.name if shipped else f"{card.name}-v{card.version}"
    keras_path = directory / f"{stem}{MODEL_SUFFIX}"
    card_path = keras_path.with_suffix(CARD_SUFFIX)
    fd, tmp_model = tempfile.mkstemp(suffix=MODEL_SUFFIX, dir=directory, prefix=".saving-")
    os.close(fd)
    try:
        keras_model.save(tmp_model)
        os.chmod(tmp_model, 0o644)  # mkstemp makes it private; models are shared read-only
        card.sha256 = sha256_of(Path(tmp_model))
        card.created = card.created or now_iso()
        _atomic_write_text(card_path.with_name(f".saving-{card_path.name}"), card.to_json())
        os.replace(tmp_model, keras_path)
        os.replace(card_path.with_name(f".saving-{card_path.name}"), card_path)
    finally:
        for leftover in (Path(tmp_model), card_path.with_name(f".saving-{card_path.name}")):
            leftover.unlink(missing_ok=True)
    return ModelEntry(card, keras_path, shipped=shipped)


def delete_model(entry: ModelEntry) -> None:
    if entry.shipped:
        raise ModelError("shipped models cannot be deleted")
    entry.card_path.unlink(missing_ok=True)  # card first: a model without card is invisible
    entry.keras_path.unlink(missing_ok=True)
    scope_detector_path(entry).unlink(missing_ok=True)


def rename_model(entry: ModelEntry, new_name: str) -> ModelEntry:
    """Rename a user model (the file keeps its hash; only the card changes)."""
    if entry.shipped:
        raise ModelError("shipped models cannot be renamed")
    new_name = new_name.strip()
    if not new_name or any(c in new_name for c in '/\\:*?"<>|'):
        raise ModelError("a model name must be non-empty and contain no / \\ : * ? \" < > |")
    entry.card.name = new_name
    _atomic_write_text(entry.card_path, entry.card.to_json())
    return entry


# ---- scope detector sidecar (core.scope): `<model stem>.scope.npz`, plain arrays only
SCOPE_SUFFIX = ".scope.npz"


def scope_detector_path(entry: ModelEntry) -> Path:
    return entry.keras_path.with_suffix(SCOPE_SUFFIX)


def save_scope_detector(entry: ModelEntry, detector) -> ModelEntry:
    """Write the detector next to the model and record it (file, sha256, statistics) in the card."""
    target = scope_detector_path(entry)
    tmp = target.with_name(f".saving-{target.name}")
    try:
        detector.save(tmp)
        digest = sha256_of(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    entry.card.scope_detector = {"file": target.name, "sha256": digest, "model_sha256": entry.card.sha256,
                                 "fitted": now_iso(), **detector.summary()}
    _atomic_write_text(entry.card_path, entry.card.to_json())
    return entry


def load_scope_detector(entry: ModelEntry):
    """The card's scope detector, verified against its SHA-256; None when the card names none."""
    recorded = entry.card.scope_detector or {}
    if not recorded.get("file"):
        return None
    path = entry.keras_path.with_name(Path(recorded["file"]).name)
    refit = f"refit it with: pneumoscan-cli fit-scope FOLDER --model \"{entry.label}\""
    if not path.is_file():
        raise ModelError(f"model {entry.label}: its scope detector {path.name} is missing; {refit}")
    if sha256_of(path) != recorded.get("sha256"):
        raise ModelError(f"model {entry.label}: its scope detector {path.name} does not match the card; {refit}")
    if recorded.get("model_sha256", entry.card.sha256) != entry.card.sha256:  # e.g. a card copied from a parent
        raise ModelError(f"model {entry.label}: its scope detector was fitted for another model file; {refit}")
    from core.scope import ScopeDetector

    try:
        return ScopeDetector.load(path)
    except ValueError as exc:
        raise ModelError(f"model {entry.label}: {exc}; {refit}") from None


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)
