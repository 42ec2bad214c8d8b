"""Does trimming blank borders before the model change a model trained without it? Prints ONE JSON object.

    python bench/border_trimming.py [--model NAME] [--cv-out runs/cv6 --recipes baseline baseline_seed1]

- `validation`: the model's own validation split (patients it was not trained on; they
  chose its epoch and threshold; the card's split seed and fraction), scored on each
  film as decoded whole and as screening now prepares it (core.imaging.preprocessing:
  blank borders trimmed): AUROC both ways, calls that change at the card's threshold, films
  trimmed, and the scope check's flags both ways;
- `cross_validation` (with --cv-out): the same pairing for each recipe's fold models on
  their held-out patients (the protocol's folds and size), so the change can be set
  against the seed-to-seed differences of docs/cv_recipe_selection.json.

site_validation is not touched: it confirms the change once, with
`pneumoscan-cli evaluate` (README, "Blank borders trimmed before the model").
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))
TRAIN = REPO_ROOT.parent / "shared" / "data" / "chest_xray" / "train"


def both_ways(paths: list[str], size: int) -> tuple[np.ndarray, np.ndarray, int]:
    """uint8 model inputs of each file decoded whole and trimmed, and how many were trimmed."""
    from core.imaging.loader import load_image
    from core.imaging.preprocessing import LOAD_MAX_SIDE_FACTOR, film_to_model_input, to_model_input, to_uint8

    def one(path):
        pixels = load_image(path, max_side=size * LOAD_MAX_SIDE_FACTOR).pixels
        trimmed, box = film_to_model_input(pixels, size)
        return to_uint8(to_model_input(pixels, size)), to_uint8(trimmed), not box.is_whole

    with ThreadPoolExecutor(2) as pool:
        got = list(pool.map(one, paths))
    return np.stack([g[0] for g in got]), np.stack([g[1] for g in got]), int(sum(g[2] for g in got))


def validation_split(model_name: str | None, folder: Path) -> dict:
    from sklearn.metrics import roc_auc_score

    from core.models.registry import load_model
    from core.screening.screener import Screener
    from core.training.dataset import labelled_samples, own_split

    loaded = load_model(model_name)
    split = own_split(labelled_samples(folder), loaded.card.training_data)
    if split is None:
        return {"error": f"{loaded.name} v{loaded.version}: its card records no validation split"}
    val = split[1]
    whole, trimmed, n_trimmed = both_ways([s.path for s in val], int(loaded.card.input_size))
    truth = np.array([s.target for s in val])
    screener = Screener(loaded, batch_size=32)
    out = {"model": f"{loaded.name} v{loaded.version}", "n": len(val), "films_trimmed": n_trimmed}
    probs = {}
    for name, images in (("whole", whole), ("trimmed", trimmed)):
        p, flags = [], 0
        for start in range(0, len(images), 32):
            batch_probs, _, scope = screener.infer_batch(images[start:start + 32].astype(np.float32) / 255.0)
            p.append(batch_probs)
            flags += 0 if scope is None else sum(bool(r) for r in scope[1])
        probs[name] = np.concatenate(p)
        out[name] = {"auroc": round(float(roc_auc_score(truth, probs[name])), 5), "scope_flagged": flags}
    threshold = float(loaded.card.threshold)
    out["calls_changed"] = int(((probs["whole"] >= threshold) != (probs["trimmed"] >= threshold)).sum())
    return out


def cross_validation(out_dir: Path, recipes: list[str]) -> dict:
    from sklearn.metrics import roc_auc_score

    from core.training.batches import forward_for, predict_cache
    from core.training.cross_validation import load_or_make_folds, protocol_samples, read_protocol
    from core.training.cv_measures import scored_model

    config = read_protocol(out_dir)
    samples = protocol_samples(config)
    folds = load_or_make_folds(config, samples)
    whole, trimmed, n_trimmed = both_ways([s.path for s in samples], int(config.input_size))
    truth = np.array([s.target for s in samples])
    out = {"protocol": dataclasses.asdict(config), "n": len(samples), "films_trimmed": n_trimmed, "diff_per_fold": {}}
    for recipe in recipes:
        diffs = []
        for fold, held in enumerate(folds):
            model = scored_model(out_dir / "runs" / f"{recipe}-fold{fold}", recipe)
            if model is None:
                continue
            forward = forward_for(model)
            a = roc_auc_score(truth[held], predict_cache(forward, whole[held]))
            b = roc_auc_score(truth[held], predict_cache(forward, trimmed[held]))
            diffs.append(round(float(b - a), 5))
        out["diff_per_fold"][recipe] = diffs
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None)
    parser.add_argument("--folder", type=Path, default=TRAIN)
    parser.add_argument("--cv-out", type=Path, default=None)
    parser.add_argument("--recipes", nargs="+", default=["baseline", "baseline_seed1"])
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        print(json.dumps({"error": f"training folder not found: {args.folder}"}))
        return 2
    result = {"validation": validation_split(args.model, args.folder)}
    if args.cv_out is not None:
        result["cross_validation"] = cross_validation(args.cv_out, args.recipes)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
