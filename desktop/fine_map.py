"""The finer heatmap (the card's `fine_cam`: an earlier, finer layer, e.g. LayerCAM on 28x28),
computed for the image on screen only, on a worker thread (never the GUI thread).

Screening keeps the batched coarse map; the fine map costs one model load (kept for
the next image) and one forward/backward pass per image the reader asks about.
Heat is on the same absolute scale as the coarse map: clip(raw / reference) x probability.
"""
from __future__ import annotations

import threading

import numpy as np

_lock = threading.Lock()


def fine_cam_of(card) -> dict | None:
    """The card's fine-map settings when it has a usable one, else None (the toggle is hidden)."""
    fine = getattr(card, "fine_cam", None) or {}
    return fine if isinstance(fine, dict) and fine.get("layer") else None


def _keras_model(source):
    """A LoadedModel (has keras_model) as is; a registry entry comes from the shared model
    cache (core.models.cache): the same model the study was screened with, loaded once."""
    if getattr(source, "keras_model", None) is not None:
        return source.keras_model
    from core.models.cache import cached_model

    return cached_model(source).keras_model


def compute_fine_map(source, path: str) -> np.ndarray:
    """The fine map (h, w) float32 in [0, 1] of one file (file and model work: call on a worker).

    `source` is a core.models.registry.ModelEntry or a LoadedModel whose card has `fine_cam`.
    """
    from core.models.gradcam import gradcam_for
    from core.imaging.preprocessing import load_for_model

    fine = fine_cam_of(source.card)
    if fine is None:
        raise ValueError(f"model {source.card.name} has no fine heatmap layer")
    keras_model = _keras_model(source)
    model_input, _loaded_image = load_for_model(path, int(source.card.input_size))
    cam = gradcam_for(keras_model, fine["layer"], fine.get("reference"), method=fine.get("method", "gradcam"))
    with _lock:  # one Keras graph call at a time from the pool's threads
        _probs, cams = cam(model_input[None])
    return cams[0]


def fine_map_source(entry):
    """For the viewer: None when the model has no fine map, else `fn(path) -> map`."""
    if entry is None or fine_cam_of(entry.card) is None:
        return None
    return lambda path: compute_fine_map(entry, path)
