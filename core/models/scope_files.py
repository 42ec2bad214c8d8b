"""A model's scope-check sidecar (`NAME.scope.npz`): written next to the model, recorded in its card
with its SHA-256, and verified before it is loaded."""
from __future__ import annotations

import os
from pathlib import Path

from core.files import write_text_atomically
from core.models.card import ModelEntry, ModelError, now_iso, sha256_of

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
    write_text_atomically(entry.card_path, entry.card.to_json())
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
    from core.models.scope import ScopeDetector

    try:
        return ScopeDetector.load(path)
    except ValueError as exc:
        raise ModelError(f"model {entry.label}: {exc}; {refit}") from None
