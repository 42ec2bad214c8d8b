"""Run (or resume) the recipe-selection cross-validation, or summarise it: prints ONE JSON object.

    python bench/cross_validate.py run --folder ../shared/data/chest_xray/train --out runs/cv \
        [--recipes baseline mixup] [--folds 3] [--epochs 4] [--input-size 128]
    python bench/cross_validate.py summary --out runs/cv [--markdown]
    python bench/cross_validate.py heat --out runs/cv [--recipes ...]
    python bench/cross_validate.py occlusion --out runs/cv [--recipes ...]
    python bench/cross_validate.py ensemble --out runs/cv --members baseline lung_focus

`run` trains each unfinished (recipe, fold) and writes runs/cv/results/<recipe>-fold<k>.json
as each finishes (core.training.cross_validation); run it again to resume. `summary`
prints means with 95 % t intervals across folds and paired gains against the baseline.
`heat` measures where each finished fold's Grad-CAM heat sits on its held-out images
(core.training.cv_heatmaps: share outside the estimated lung fields) and prints the means.
`occlusion` scores each finished full-film fold with the frame around the thorax hidden,
and with the thorax hidden (core.training.cv_occlusion), and prints the mean AUROCs.
`ensemble` scores the mean of the members' fold models on the same folds
(core.training.cv_ensemble) as results/ensemble-<a>+<b>-fold<k>.json; `summary` then
pairs it with the baseline like any recipe.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("--folder", required=True)
    run.add_argument("--out", required=True)
    run.add_argument("--recipes", nargs="+", default=["baseline", "mixup"])
    run.add_argument("--folds", type=int, default=3)
    run.add_argument("--only-folds", type=int, nargs="+")
    run.add_argument("--epochs", type=int, default=4)
    run.add_argument("--input-size", type=int, default=128)
    run.add_argument("--seed", type=int, default=0)
    for name in ("heat", "occlusion"):
        measure = sub.add_parser(name)
        measure.add_argument("--out", required=True)
        measure.add_argument("--recipes", nargs="+")
    ensemble = sub.add_parser("ensemble")
    ensemble.add_argument("--out", required=True)
    ensemble.add_argument("--members", nargs="+", required=True)
    summary = sub.add_parser("summary")
    summary.add_argument("--out", required=True)
    summary.add_argument("--markdown", action="store_true", help="the README's table instead of JSON")
    args = parser.parse_args(argv)

    from core.training.cross_validation import read_protocol
    from core.training.cv_summary import markdown_table, summarise

    if args.command == "run":
        from core.training.cross_validation import CVConfig, run_protocol

        if not Path(args.folder).is_dir():
            print(json.dumps({"error": f"folder not found: {args.folder}"}))
            return 2
        config = CVConfig(folder=args.folder, out_dir=args.out, folds=args.folds, epochs=args.epochs,
                          input_size=args.input_size, seed=args.seed)
        try:
            run_protocol(config, args.recipes, args.only_folds, log=lambda m: print(m, file=sys.stderr, flush=True))
        except ValueError as exc:
            print(json.dumps({"error": str(exc)}))
            return 2
    if args.command == "ensemble":
        from core.training.cv_ensemble import run_ensemble

        try:  # members that cannot be averaged are refused before anything is loaded
            run_ensemble(read_protocol(args.out), args.members, log=lambda m: print(m, file=sys.stderr, flush=True))
        except (FileNotFoundError, ValueError) as exc:
            print(json.dumps({"error": str(exc)}))
            return 2
    if args.command in ("heat", "occlusion"):
        from core.training import cv_heatmaps, cv_occlusion
        from core.training.cross_validation import RECIPES

        run, summarise_measure = {"heat": (cv_heatmaps.run_heat, cv_heatmaps.summarise_heat),
                                  "occlusion": (cv_occlusion.run_occlusion, cv_occlusion.summarise_occlusion)}[args.command]
        try:
            config = read_protocol(args.out)
        except FileNotFoundError as exc:
            print(json.dumps({"error": str(exc)}))
            return 2
        run(config, args.recipes or list(RECIPES), log=lambda m: print(m, file=sys.stderr, flush=True))
        print(json.dumps(summarise_measure(args.out), indent=1))
        return 0
    if getattr(args, "markdown", False):
        print(markdown_table(summarise(args.out)))
    else:
        print(json.dumps(summarise(args.out), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
