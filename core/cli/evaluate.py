"""`pneumoscan-cli evaluate`: metrics of a model on a labelled folder."""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

from core.csvsafe import neutral_row

JSON_KEYS = ("model", "n", "errors", "out_of_scope", "threshold", "accuracy", "sensitivity", "specificity",
             "precision", "npv", "f1", "auroc", "tn", "fp", "fn", "tp")
# Added after the original keys (existing readers keep working): calibration of the
# shown probabilities and 95 % intervals ({metric: [low, high] or null}).
EXTRA_JSON_KEYS = ("temperature", "ece", "brier", "ci95", "ci_method")


def register(sub) -> None:
    p = sub.add_parser("evaluate", help="metrics of a model on a labelled folder (labels.csv or NORMAL/PNEUMONIA "
                                            "sub-folders)")
    p.add_argument("folder")
    p.add_argument("--model", help="model name or .keras path (default: the default model)")
    p.add_argument("--threshold", type=float, help="decision threshold (default: the model card's)")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object")
    p.add_argument("--csv", metavar="FILE", help="also write one row per image")
    p.add_argument("--batch-size", type=int, default=32)
    p.set_defaults(func=run)


def evaluate(folder, model_name=None, threshold=None, batch_size=32, csv_path=None) -> dict:
    """Screen every labelled image of `folder` (core.imaging.labelled: labels.csv, else
    NORMAL/PNEUMONIA sub-folders, as the window reads it); return the JSON_KEYS + EXTRA_JSON_KEYS dict.

    Probabilities are the Screener's, calibrated with the card's temperature
    exactly as screening shows them; the threshold is on that scale. Metrics are on in-scope images;
    `out_of_scope` counts the others (core.models.scope).
    """
    from core.models.calibration import calibration_report
    from core.imaging.labelled import labelled_folder
    from core.training.metrics import metrics_with_ci
    from core.models.registry import load_model
    from core.screening.screener import Screener

    labelled = labelled_folder(folder).labelled
    if not labelled:
        raise ValueError(f"no labelled images in {folder} (a labels.csv, or NORMAL/ and PNEUMONIA/ sub-folders)")
    model = load_model(model_name)
    threshold = model.threshold if threshold is None else threshold
    screener = Screener(model, threshold=threshold, batch_size=batch_size, gradcam=False)
    by_path = dict(labelled)
    labels, probs, errors, out_of_scope, rows = [], [], 0, 0, []
    for result in screener.screen([path for path, _label in labelled]):
        truth = by_path[str(result.path)]
        probability = result.probability
        if result.error:
            errors += 1
        elif result.scope:
            out_of_scope += 1
        else:
            labels.append(1 if truth == "PNEUMONIA" else 0)
            probs.append(probability)
        rows.append((result.path, truth, "" if result.error else f"{probability:.6f}",
                     "" if result.error else result.prediction, result.error or ""))
    if csv_path:
        with open(csv_path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["path", "label", "probability", "prediction", "error"])
            writer.writerows(neutral_row(row) for row in rows)  # file names: no formulas
    if not labels:
        raise ValueError("no image could be read" if not out_of_scope else
                         f"all {out_of_scope} readable images are outside what the model knows (out of scope)")
    metrics = metrics_with_ci(labels, probs, threshold)
    metrics.update(model=model.card.label, errors=errors, out_of_scope=out_of_scope, temperature=screener.temperature,
                   **{k: v for k, v in calibration_report(labels, probs).items() if k != "n"})
    return {key: metrics[key] for key in JSON_KEYS + EXTRA_JSON_KEYS}


def run(args) -> int:
    from core.models.registry import ModelError

    if not Path(args.folder).is_dir():
        print(f"error: folder not found: {args.folder}", file=sys.stderr)
        return 2
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        print("error: --threshold must be between 0 and 1", file=sys.stderr)
        return 2
    try:
        result = evaluate(args.folder, args.model, args.threshold, args.batch_size, args.csv)
    except (ValueError, ModelError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result))
    else:
        intervals = result["ci95"]
        for key in JSON_KEYS + ("temperature", "ece", "brier"):
            value, interval = result[key], intervals.get(key)
            text = f"{value:.4f}" if isinstance(value, float) else str(value)
            if interval:
                text += f"  (95% CI {interval[0]:.4f}-{interval[1]:.4f})"
            print(f"{key:>12}: {text}")
        print(f"{'':>12}  {result['ci_method']}")
    return 0
