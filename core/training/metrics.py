"""Screening metrics and threshold choice, on scikit-learn."""
from __future__ import annotations

import math

import numpy as np


def auroc(labels, probabilities) -> float | None:
    """Area under the ROC curve; None unless both classes are present."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(labels, dtype=int)
    return float(roc_auc_score(y, np.asarray(probabilities, dtype=float))) if len(np.unique(y)) == 2 else None


def binary_metrics(labels, probabilities, threshold: float) -> dict:
    """Confusion-matrix metrics at `threshold` (labels: 1 = pneumonia)."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_score, recall_score

    y = np.asarray(labels, dtype=int)
    p = np.asarray(probabilities, dtype=float)
    pred = (p >= threshold).astype(int)
    tn, fp, fn, tp = (int(v) for v in confusion_matrix(y, pred, labels=[0, 1]).ravel())
    return {
        "n": int(len(y)),
        "threshold": float(threshold),
        "accuracy": float(accuracy_score(y, pred)) if len(y) else None,
        "sensitivity": float(recall_score(y, pred, zero_division=0)) if tp + fn else None,
        "specificity": float(recall_score(1 - y, 1 - pred, zero_division=0)) if tn + fp else None,
        "precision": float(precision_score(y, pred, zero_division=0)) if tp + fp else None,
        "npv": float(precision_score(1 - y, 1 - pred, zero_division=0)) if tn + fn else None,
        "f1": float(f1_score(y, pred, zero_division=0)) if len(y) else None,
        "auroc": auroc(y, p),
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
    # Every threshold: roc_curve's default drops collinear points, which can skip
    # the highest one that reaches the target (between two positives in a row).
    _, tpr, thresholds = roc_curve(y, np.asarray(probabilities, dtype=float), drop_intermediate=False)
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


# ---------------------------------------------------------------- confidence intervals
Z95 = 1.959963984540054  # two-sided 95 % normal quantile
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0
CI_METHOD = (f"95 %: Wilson score interval for proportions; stratified bootstrap "
             f"({BOOTSTRAP_RESAMPLES} resamples, seed {BOOTSTRAP_SEED}) for AUROC; per image")
# Which confusion-matrix cells make each proportion: (successes, failures).
_PROPORTIONS = {"sensitivity": ("tp", "fn"), "specificity": ("tn", "fp"),
                "accuracy": (("tp", "tn"), ("fp", "fn")), "precision": ("tp", "fp"), "npv": ("tn", "fn")}


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval of a proportion (None when n is 0).

    Unlike the normal approximation it stays inside [0, 1] and is honest at
    100 % (e.g. 30/30 -> 0.886-1.000), where screening proportions live.
    """
    if n <= 0:
        return None
    p = successes / n
    denominator = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def bootstrap_aurocs(labels, probabilities, resamples: int = BOOTSTRAP_RESAMPLES,
                     seed: int = BOOTSTRAP_SEED) -> np.ndarray | None:
    """AUROC of each stratified bootstrap resample (None without both classes).

    Positives and negatives are resampled separately (each resample keeps the
    class counts). Every resample's AUROC is the Mann-Whitney statistic
    computed from how often each image was drawn: O(resamples x images) array
    work, no Python loop over resamples (1000 resamples of 400 images: ~20 ms).
    """
    y = np.asarray(labels, dtype=int)
    p = np.asarray(probabilities, dtype=float)
    pos, neg = p[y == 1], np.sort(p[y == 0])
    if len(pos) == 0 or len(neg) == 0:
        return None
    rng = np.random.default_rng(seed)
    lower = np.searchsorted(neg, pos, side="left")  # negatives scored lower than each positive
    upper = np.searchsorted(neg, pos, side="right")  # ...or tied with it
    # Blocks of resamples keep memory at block x images whatever the set size.
    block = max(1, min(resamples, 2_000_000 // (len(pos) + len(neg))))
    aurocs = []
    for start in range(0, resamples, block):
        size = min(block, resamples - start)
        # How often each image is drawn in each resample: (size, n) counts.
        pos_counts = rng.multinomial(len(pos), np.full(len(pos), 1.0 / len(pos)), size=size)
        neg_counts = rng.multinomial(len(neg), np.full(len(neg), 1.0 / len(neg)), size=size)
        cumulative = np.concatenate([np.zeros((size, 1)), np.cumsum(neg_counts, axis=1)], axis=1)
        below, not_above = cumulative[:, lower], cumulative[:, upper]
        wins = below + 0.5 * (not_above - below)  # (size, positives)
        aurocs.append((pos_counts * wins).sum(axis=1) / (len(pos) * len(neg)))
    return np.concatenate(aurocs)


def bootstrap_auroc_ci(labels, probabilities, resamples: int = BOOTSTRAP_RESAMPLES,
                       seed: int = BOOTSTRAP_SEED, level: float = 0.95) -> tuple[float, float] | None:
    """Percentile interval of AUROC over stratified bootstrap resamples (seeded)."""
    aurocs = bootstrap_aurocs(labels, probabilities, resamples, seed)
    if aurocs is None:
        return None
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(aurocs, [tail, 100 - tail])
    return float(low), float(high)


def confidence_intervals(metrics: dict, labels=None, probabilities=None) -> dict:
    """95 % intervals for binary_metrics' proportions (Wilson) and AUROC (bootstrap)."""
    intervals = {}
    for name, (hit, miss) in _PROPORTIONS.items():
        hits = sum(metrics[k] for k in hit) if isinstance(hit, tuple) else metrics[hit]
        misses = sum(metrics[k] for k in miss) if isinstance(miss, tuple) else metrics[miss]
        interval = wilson_interval(hits, hits + misses)
        intervals[name] = None if interval is None else list(interval)
    auroc = None if labels is None else bootstrap_auroc_ci(labels, probabilities)
    intervals["auroc"] = None if auroc is None else list(auroc)
    return intervals


def metrics_with_ci(labels, probabilities, threshold: float) -> dict:
    """binary_metrics plus `ci95` ({metric: [low, high] or None}) and `ci_method`."""
    metrics = binary_metrics(labels, probabilities, threshold)
    metrics["ci95"] = confidence_intervals(metrics, labels, probabilities)
    metrics["ci_method"] = CI_METHOD
    return metrics


def format_with_ci(value, interval, percent: bool = True) -> str:
    """"97.2 % (95 % CI 92.1-99.0)": how every metric is shown to a person."""
    if value is None:
        return "n/a"
    if percent:
        text = f"{value:.1%}"
        return text if not interval else f"{text} (95% CI {interval[0]:.1%}-{interval[1]:.1%})"
    text = f"{value:.3f}"
    return text if not interval else f"{text} (95% CI {interval[0]:.3f}-{interval[1]:.3f})"


# ---------------------------------------------------------------- how many cases a claim needs
SENSITIVITY_MARGIN = 0.05  # +/- half-width of sensitivity's 95 % interval at the target
SPECIFICITY_HALF_WIDTH = 0.15  # the widest (p = 0.5) Wilson half-width allowed for specificity


def positives_needed(target_sensitivity: float, margin: float = SENSITIVITY_MARGIN) -> int:
    """Positive images needed before "sensitivity >= target" means something.

    Two conditions, both required:
    1. the target leaves room for at least one miss: n >= ceil(1 / (1 - target))
       (with fewer, reaching the target means catching every positive, so the
       target itself is never tested: 0.97 needs 34);
    2. precision of the estimate (Buderer's sample-size rule, with the Wilson
       interval): an observed sensitivity equal to the target has a 95 %
       interval no wider than +/- `margin` (5 points: 0.97 -> 61, 0.90 -> 141).
    A target of 100 % cannot leave room for a miss; only rule 2 applies to it.
    """
    if not 0.0 < target_sensitivity <= 1.0:
        raise ValueError("target sensitivity must be in (0, 1]")
    one_miss = math.ceil(1.0 / (1.0 - target_sensitivity) - 1e-9) if target_sensitivity < 1.0 else 1
    n = max(1, one_miss)
    while True:
        low, high = wilson_interval(target_sensitivity * n, n)
        if (high - low) / 2 <= margin:
            return n
        n += 1


def negatives_needed(half_width: float = SPECIFICITY_HALF_WIDTH) -> int:
    """Negative images needed so specificity's Wilson 95 % interval is at most
    +/- `half_width` whatever the specificity turns out to be (p = 0.5 is widest): 39."""
    n = 1
    while True:
        low, high = wilson_interval(0.5 * n, n)
        if (high - low) / 2 <= half_width:
            return n
        n += 1


def evidence_shortfall(positives: int, negatives: int, target_sensitivity: float) -> str | None:
    """Why `positives` / `negatives` labelled images are too few to choose and
    check an operating point for `target_sensitivity` (None when enough)."""
    need_pos, need_neg = positives_needed(target_sensitivity), negatives_needed()
    missing = []
    if positives < need_pos:
        missing.append(f"{need_pos - positives} more pneumonia images (have {positives}, need {need_pos})")
    if negatives < need_neg:
        missing.append(f"{need_neg - negatives} more normal images (have {negatives}, need {need_neg})")
    if not missing:
        return None
    return (f"too few labelled images for a sensitivity target of {target_sensitivity:.0%}: "
            f"{' and '.join(missing)}. Rule: the target must leave room for one missed pneumonia "
            f"(at least 1/(1 - target) positives), and the 95% Wilson interval of a sensitivity equal to "
            f"the target must be at most +/-{SENSITIVITY_MARGIN:.0%} wide, that of specificity at most "
            f"+/-{SPECIFICITY_HALF_WIDTH:.0%} whatever its value")
