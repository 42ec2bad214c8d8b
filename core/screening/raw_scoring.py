"""Raw (uncalibrated) model probabilities for labelled images.

Calibration must be fitted from the network's own output, and evaluation
applies a card's temperature exactly once. Screening a *view* of the model
whose card says temperature 1 gives the raw output whether or not the
Screener applies `card.temperature` itself.
"""
from __future__ import annotations

import dataclasses
import threading

import numpy as np


def uncalibrated_view(loaded):
    """The same loaded network (and scope detector), with a card copy at temperature 1
    (the file is untouched)."""
    return dataclasses.replace(loaded, card=dataclasses.replace(loaded.card, temperature=1.0))


def raw_probabilities(loaded, paths: list[str], batch_size: int = 32, report=None,
                      cancel: threading.Event | None = None) -> tuple[np.ndarray, dict[str, str]]:
    """(raw probability per path, NaN where the file failed; {path: error message}).

    `report(done, total)` is called after every batch; `cancel` stops within a batch.
    """
    from core.screening.screener import Screener

    screener = Screener(uncalibrated_view(loaded), threshold=0.5, batch_size=batch_size, gradcam=False)
    probs = np.full(len(paths), np.nan)
    errors: dict[str, str] = {}
    positions: dict[str, list[int]] = {}
    for i, path in enumerate(paths):
        positions.setdefault(str(path), []).append(i)
    done = 0
    for result in screener.screen(list(paths), cancel=cancel):
        i = positions[str(result.path)].pop(0)  # results may arrive out of input order
        if result.error or result.probability is None:
            errors[str(paths[i])] = result.error or "no probability"
        else:
            probs[i] = result.probability
        done += 1
        if report is not None and (done % batch_size == 0 or done == len(paths)):
            report(done, len(paths))
    if done < len(paths) and (cancel is None or not cancel.is_set()):
        raise RuntimeError(f"screening stopped after {done} of {len(paths)} images")
    return probs, errors
