"""Probability calibration: temperature scaling on the logit, and how well
calibrated a set of probabilities is (ECE, Brier score).

A model's card holds its temperature T; every probability that is shown or
thresholded is `apply_temperature(raw, T)`, and the card's threshold is on
that calibrated scale. T = 1 leaves probabilities unchanged (v1 models).
"""
from __future__ import annotations

import numpy as np

_EPS = 1e-7


def logit(probabilities) -> np.ndarray:
    p = np.clip(np.asarray(probabilities, dtype=np.float64), _EPS, 1.0 - _EPS)
    return np.log(p) - np.log1p(-p)


def apply_temperature(probabilities, temperature: float) -> np.ndarray:
    """sigmoid(logit(p) / T): T > 1 softens over-confident outputs."""
    if temperature is None or temperature == 1.0:
        return np.asarray(probabilities, dtype=np.float64)
    z = logit(probabilities) / float(temperature)
    return 1.0 / (1.0 + np.exp(-z))


def fit_temperature(labels, probabilities, bounds=(0.05, 20.0)) -> float:
    """The T that minimises the negative log-likelihood of `labels` (1 = pneumonia).

    One parameter fitted by a bounded scalar search (SciPy), so a few dozen
    labelled images are enough and it cannot change the ranking (AUROC).
    """
    from scipy.optimize import minimize_scalar

    y = np.asarray(labels, dtype=np.float64)
    if len(y) == 0 or len(np.unique(y)) < 2:
        raise ValueError("temperature scaling needs labelled images of both classes")
    z = logit(probabilities)

    def nll(log_t):
        s = z / np.exp(log_t)
        # log(1 + exp(-s)) for positives, log(1 + exp(s)) for negatives, stably
        return float(np.mean(np.logaddexp(0.0, -s) * y + np.logaddexp(0.0, s) * (1 - y)))

    result = minimize_scalar(nll, bounds=(np.log(bounds[0]), np.log(bounds[1])), method="bounded")
    return float(np.exp(result.x))


def expected_calibration_error(labels, probabilities, bins: int = 10) -> float:
    """ECE with equal-width bins over [0, 1] (the common definition), weighted by bin size."""
    y = np.asarray(labels, dtype=np.float64)
    p = np.asarray(probabilities, dtype=np.float64)
    if len(y) == 0:
        return float("nan")
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(p, edges[1:-1], right=False), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            ece += mask.mean() * abs(p[mask].mean() - y[mask].mean())
    return float(ece)


def brier_score(labels, probabilities) -> float:
    y = np.asarray(labels, dtype=np.float64)
    p = np.asarray(probabilities, dtype=np.float64)
    return float(np.mean((p - y) ** 2)) if len(y) else float("nan")


def calibration_report(labels, probabilities) -> dict:
    return {"ece": expected_calibration_error(labels, probabilities),
            "brier": brier_score(labels, probabilities), "n": int(len(labels))}
