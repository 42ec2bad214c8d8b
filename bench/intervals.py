"""Cost of the statistics behind every shown metric: prints ONE JSON object.

    python bench/intervals.py [--repeats 5]

- bootstrap_auroc_s: median seconds for the stratified 1000-resample AUROC
  interval (core.training.metrics.bootstrap_auroc_ci) at several set sizes; target
  well under 1 s for a few hundred images (the wizard recomputes it per model);
- site_fit_s: median seconds for core.training.site_calibration.fit_site_calibration
  (temperature with grouped cross-validation, threshold, cross-validated
  operating point, intervals) on synthetic scores of site_validation's size.
No model runs here: screening cost is bench/screening.py's.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _scores(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.66).astype(int)
    return labels, np.clip(labels * 0.3 + rng.random(n) * 0.7, 0, 1)


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    from core.training.dataset import Sample
    from core.training.metrics import bootstrap_auroc_ci
    from core.models.registry import ModelCard
    from core.training.site_calibration import fit_site_calibration

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    bootstrap = {}
    for n in (218, 400, 1000, 5000):
        labels, probs = _scores(n)
        bootstrap[str(n)] = round(_median_time(lambda: bootstrap_auroc_ci(labels, probs), args.repeats), 4)
    labels, probs = _scores(218, seed=1)
    samples = [Sample(f"img{i}.png", "PNEUMONIA" if y else "NORMAL", f"p{i // 2}") for i, y in enumerate(labels)]
    card = ModelCard(name="bench", architecture="none", sha256="0" * 64)
    fit = _median_time(lambda: fit_site_calibration(samples, probs, card, 0.97), args.repeats)
    print(json.dumps({"bootstrap_auroc_s": bootstrap, "site_fit_s": round(fit, 4),
                      "target_bootstrap_s_400": 1.0}))


if __name__ == "__main__":
    main()
