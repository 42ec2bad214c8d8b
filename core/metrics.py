"""Screening metrics and threshold choice, on scikit-learn."""
from __future__ import annotations

import math

import numpy as np


def binary_metrics(labels, probabilities, threshold: float) -> dict:
    """Confusion-matrix metrics at `threshold` (labels: 1 = pneumonia)."""
    from sklearn.metrics import (accuracy_score, confusion_matrix, f1_score,
                                 precision_score, recall_score, roc_auc_score)

    y = np.asarray(labels, dtype=int)
    p = np.asarray(probabilities, dtype=float)
    pred = (p >= threshold).astype(int)
    tn, fp, fn, tp = (int(v) for v in confusion_matrix(y, pred, labels=[0, 1]).ravel())
    both_classes = len(np.unique(y)) == 2
    return {
        "n": int(len(y)),
        "threshold": float(threshold),
        "accuracy": float(accuracy_score(y, pred)) if len(y) else None,
        "sensitivity": float(recall_score(y, pred, zero_division=0)) if tp + fn else None,
        "specificity": float(recall_score(1 - y, 1 - pred, zero_division=0)) if tn + fp else None,
        "precision": float(precision_score(y, pred, zero_division=0)) if tp + fp else None,
        "npv": float(precision_score(1 - y, 1 - pred, zero_division=0)) if tn + fn else None,
        "f1": float(f1_score(y, pred, zero_division=0)) if len(y) else None,
        "auroc": float(roc_auc_score(y, p)) if both_classes else None,
        "tn": tn, "fp": fp, "fn": fn, "tp": tp,
    }


def threshold_for_sensitivity(labels, probabilities, target: float) -> float:
    """The highest threshold whose sensitivity reaches `target` on these data.

    Highest, so specificity is as good as it can be at that sensitivity.
    """
    from sklearn.metrics import roc_curve

    y = np.asarray(labels, dtype=int)
    if not 0.0 < target <= 1.0:
        raise ValueError("target sensitivity must be in (0, 1]")
    if y.sum() == 0:
        raise ValueError("no positive cases: cannot choose a threshold for sensitivity")
    _, tpr, thresholds = roc_curve(y, np.asarray(probabilities, dtype=float))
    index = int(np.argmax(tpr >= target - 1e-12))
    return float(np.clip(thresholds[index], 0.0, 1.0))


def roc_points(labels, probabilities) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(np.asarray(labels, dtype=int), np.asarray(probabilities, dtype=float))
    return fpr, tpr


def storable_threshold(threshold: float, decimals: int = 6) -> float:
    """Shorten a threshold for a model card by rounding *down*.

    Rounding to nearest could lift it above the score of the last positive it
    was chosen to catch, and lose the target sensitivity.
    """
    scale = 10 ** decimals
    return math.floor(float(threshold) * scale) / scale
