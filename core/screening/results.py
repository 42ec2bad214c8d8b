"""Plain records that flow loader -> model -> results -> store -> view."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.imaging.preprocessing import FILM_PREPARATION, FILM_PREPARATIONS

POSITIVE = "PNEUMONIA"
NEGATIVE = "NORMAL"
# The call for an image outside what the model knows (core.models.scope): no NORMAL/PNEUMONIA.
OUT_OF_SCOPE = "OUT_OF_SCOPE"

# Reader decisions about the AI call.
AGREE = "agree"
DISAGREE = "disagree"
UNSURE = "unsure"
DECISIONS = (AGREE, DISAGREE, UNSURE)
# Not a reader label: the reader asked for the AI call on an out-of-scope image. Stored
# with the decisions (who, when, model, the scope reason it overrode) and undone like them.
SCREEN_ANYWAY = "screen_anyway"
RECORDED_KINDS = DECISIONS + (SCREEN_ANYWAY,)


def classify(probability: float | None, threshold: float) -> str | None:
    """The AI call at a threshold; re-labelling never re-runs the model."""
    if probability is None:
        return None
    return POSITIVE if probability >= threshold else NEGATIVE


def reader_label(decision: str, ai_call: str | None) -> str | None:
    """The label a reader's decision implies (None when unsure or no AI call)."""
    if ai_call is None or decision not in (AGREE, DISAGREE):
        return None
    if decision == AGREE:
        return ai_call
    return NEGATIVE if ai_call == POSITIVE else POSITIVE


@dataclass
class ScreenResult:
    path: str
    probability: float | None  # None when error is set
    threshold: float
    model: str  # model name
    model_version: str = ""
    model_hash: str = ""
    error: str | None = None
    # Grad-CAM on the model's last conv grid (e.g. 7x7), normalised to [0, 1], over the whole
    # frame (a finer grid, zero on the borders, where blank borders were trimmed before the
    # model); core.models.gradcam.upsample() brings it to any image resolution on demand.
    cam: np.ndarray | None = None
    kind: str = ""  # loader kind: jpeg, png, dicom, ...
    meta: dict = field(default_factory=dict)  # loader meta (DICOM attributes)
    image_shape: tuple[int, int] | None = None  # full-resolution (rows, cols)
    # Scope check: "" when the image is within what the model knows, else the short
    # reason ("not a chest X-ray", "lateral view", ...). The probability is kept either way.
    scope: str = ""
    scope_score: float | None = None  # the content detector's score (higher = less familiar)
    # Provenance: the PneumoScan that made the result and how it prepared the film
    # (core.imaging.preprocessing.FILM_PREPARATION). "" / None: stored before 0.4.2, not recorded.
    software_version: str = ""
    film_preparation: int | None = None

    @property
    def prediction(self) -> str | None:
        if self.scope and self.probability is not None:
            return OUT_OF_SCOPE
        return classify(self.probability, self.threshold)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def earlier_preparation(self) -> bool:
        """Made from a film prepared otherwise than now (or not recorded): kept, never
        silently replaced, but screening it again may change it."""
        return self.film_preparation != FILM_PREPARATION

    @property
    def provenance(self) -> str:
        """How the result was made, for the reader and the report."""
        return provenance_text(self.software_version, self.film_preparation)


NOT_RECORDED = "not recorded (stored before PneumoScan 0.4.2)"


def earlier_preparation_note(count: int) -> str:
    """What the CLI and the window say about stored results made from films prepared
    otherwise than now ("" when there are none)."""
    if not count:
        return ""
    return (f"{count} stored result(s) were made by an earlier PneumoScan (before 0.4.2 it did not "
            f"record how the film was prepared; 0.4.0 did not trim blank borders) and are kept as they were")


def provenance_text(software_version: str, film_preparation: int | None) -> str:
    if not software_version and film_preparation is None:
        return NOT_RECORDED
    preparation = FILM_PREPARATIONS.get(film_preparation, f"film preparation {film_preparation}")
    return f"PneumoScan {software_version or '?'}, {preparation}"
