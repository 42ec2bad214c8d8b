"""The one door from the PACS code to the screening engine.

Everything in `core.pacs` screens through `ScreeningAdapter`, so when the
engine gains a single `screen_study`-style call (with the scope check and
calibrated probabilities) only this file changes. TensorFlow is imported when
an adapter is created, never at module import.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from core.screening.results import ScreenResult


class ScreeningAdapter:
    """One loaded model, screening one received file at a time, with Grad-CAM when the model allows."""

    def __init__(self, model_name: str | None = None, loaded_model=None):
        from core.models.cache import cached_model
        from core.screening.screener import Screener

        # The shared model cache: the window's study and the listener screen with one copy.
        self.loaded = loaded_model if loaded_model is not None else cached_model(model_name)
        try:
            self.screener = Screener(self.loaded, gradcam=True)
        except ValueError:  # no Grad-CAM layer: results still go out, the capture without a heatmap
            self.screener = Screener(self.loaded, gradcam=False)

    @property
    def model_hash(self) -> str:
        return self.loaded.sha256

    def screen(self, path: Path) -> ScreenResult:
        """The result for one file (errors are in result.error, never raised)."""
        return next(iter(self.screen_files([path])))

    def screen_files(self, paths: list[Path]) -> Iterator[ScreenResult]:
        """One result per file, in order; files that arrived together share batches."""
        return self.screener.screen(list(paths))
