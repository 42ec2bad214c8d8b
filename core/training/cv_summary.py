"""Summary of the cross-validation results (core.training.cross_validation):
per recipe, each metric's fold values, mean and 95 % t interval across folds,
and for each candidate the paired gain over the baseline (same folds), with
its own t interval. A candidate "beats" the baseline on a metric only when
that interval lies above zero: a gain within fold noise is no gain.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

METRICS = ("auroc", "shifted_auroc_mean", "viral_vs_normal_auroc", "viral_vs_normal_shifted_auroc_mean",
           "tta_auroc", "tta_viral_vs_normal_auroc")
BASELINE = "baseline"


def t_interval(values) -> dict:
    """Mean and 95 % Student-t interval of a few fold values (None interval for one value)."""
    from scipy import stats

    values = np.asarray([v for v in values if v is not None], dtype=float)
    if len(values) == 0:
        return {"mean": None, "ci95": None, "n": 0}
    mean = float(values.mean())
    if len(values) < 2:
        return {"mean": mean, "ci95": None, "n": 1}
    half = float(stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values)))
    return {"mean": mean, "ci95": [mean - half, mean + half], "n": int(len(values))}


def load_results(out_dir) -> dict:
    """{recipe: {fold: result}} from out_dir/results/*.json."""
    results: dict = {}
    for path in sorted((Path(out_dir) / "results").glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        results.setdefault(data["recipe"], {})[int(data["fold"])] = data
    return results


def gain_interval(diffs, flag: str = "above_zero") -> dict:
    """t interval of paired differences (one per fold); `flag` is true only when it lies above zero."""
    interval = t_interval(diffs)
    interval[flag] = bool(interval["ci95"] and interval["ci95"][0] > 0)
    return interval


def _known(*values) -> bool:
    return all(v is not None for v in values)


def summarise(out_dir) -> dict:
    results = load_results(out_dir)
    table = {}
    for recipe, folds in results.items():
        row = {"folds": sorted(folds)}
        for metric in METRICS:
            values = [folds[f].get(metric) for f in sorted(folds)]
            row[metric] = {"per_fold": values, **t_interval(values)}
        table[recipe] = row
    gains = {}
    base = results.get(BASELINE, {})
    for recipe, folds in results.items():
        if recipe == BASELINE:
            continue
        shared = sorted(set(folds) & set(base))
        gains[recipe] = {}
        for metric in METRICS:
            gains[recipe][metric] = gain_interval([folds[f][metric] - base[f][metric] for f in shared
                                                   if _known(folds[f].get(metric), base[f].get(metric))],
                                                  "beats_baseline")
    # Test-time augmentation against the same model's plain score, fold by fold.
    tta_gain = {recipe: {metric: gain_interval([r[f"tta_{metric}"] - r[metric] for r in folds.values()
                                                if _known(r.get(f"tta_{metric}"), r.get(metric))])
                         for metric in ("auroc", "viral_vs_normal_auroc")}
                for recipe, folds in results.items()}
    protocol_path = Path(out_dir) / "protocol.json"
    protocol = json.loads(protocol_path.read_text(encoding="utf-8")) if protocol_path.is_file() else None
    return {"protocol": protocol, "recipes": table, "paired_gain_vs_baseline": gains,
            "tta_gain_within_recipe": tta_gain,
            "rule": "a candidate is kept only where the 95 % t interval of its paired gain over the baseline "
                    "(same folds) lies above zero"}


def _cell(entry: dict) -> str:
    values = " / ".join(f"{v:.3f}" for v in entry["per_fold"] if v is not None)
    if entry["mean"] is None:
        return "-"
    interval = f" ({entry['ci95'][0]:.3f}-{entry['ci95'][1]:.3f})" if entry["ci95"] else ""
    return f"{entry['mean']:.3f}{interval}" + (f" [{values}]" if values else "")


def markdown_table(summary: dict) -> str:
    """The README's table: per recipe, mean (95 % t interval) [per-fold values] of each score."""
    columns = (("auroc", "held-out AUROC"), ("shifted_auroc_mean", "shifted copies AUROC"),
               ("viral_vs_normal_auroc", "viral vs normal AUROC"), ("tta_auroc", "with TTA AUROC"))
    lines = ["| recipe | " + " | ".join(title for _, title in columns) + " |",
             "|---" * (len(columns) + 1) + "|"]
    for recipe, row in summary["recipes"].items():
        lines.append(f"| {recipe} | " + " | ".join(_cell(row[key]) for key, _ in columns) + " |")
    for recipe, gains in summary["paired_gain_vs_baseline"].items():
        lines.append(f"| {recipe} - baseline (paired) | " + " | ".join(
            _cell({**gains[key], "per_fold": []}) for key, _ in columns) + " |")
    return "\n".join(lines)
