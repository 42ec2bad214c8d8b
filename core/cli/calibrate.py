"""`pneumoscan-cli calibrate FOLDER`: a site's operating point for a model, as a new version.

Same weights (byte-for-byte copy), threshold and temperature chosen on
FOLDER's NORMAL/PNEUMONIA images; see core.training.site_calibration.
"""
from __future__ import annotations

import shlex
import sys
from pathlib import Path

from core.cli.exit_codes import EXIT_USAGE


def register(sub) -> None:
    p = sub.add_parser(
        "calibrate", help="choose a model's threshold (and temperature) on a site's labelled images",
        description="Screen FOLDER's NORMAL/PNEUMONIA images with a model and register a new version with "
                    "the same weights whose threshold reaches the target sensitivity on them (temperature "
                    "refitted where it helps). Refuses when the folder has too few images of either class.")
    p.add_argument("folder", metavar="FOLDER", help="labelled folder: labels.csv, or NORMAL and PNEUMONIA sub-folders")
    p.add_argument("--model", metavar="NAME", help="model to start from (default: the default model)")
    p.add_argument("--target-sensitivity", type=float, default=0.97, metavar="S",
                   help="sensitivity the threshold must reach on FOLDER (default 0.97)")
    p.add_argument("--name", metavar="NEW", help='name of the new entry (default "<model>-site")')
    p.set_defaults(func=run)


def _command(args) -> str:
    parts = ["pneumoscan-cli", "calibrate", args.folder]
    for flag, value in (("--model", args.model), ("--target-sensitivity", args.target_sensitivity),
                        ("--name", args.name)):
        if value is not None:
            parts += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
    return shlex.join(parts)


def _pct(metrics: dict, key: str) -> str:
    from core.training.metrics import format_with_ci

    return format_with_ci(metrics.get(key), (metrics.get("ci95") or {}).get(key), percent=key != "auroc")


def summary(entry, calibration) -> str:
    r = calibration.record
    m, cv, base = r["metrics"], r["cross_validated"], r["base_metrics"]
    lines = [
        f"registered {entry.label} (same weights as {r['base_model']}, sha256 {entry.card.sha256[:12]}…)",
        f"  images: {r['counts']['NORMAL']} normal / {r['counts']['PNEUMONIA']} pneumonia "
        f"({r['patients']['NORMAL']} / {r['patients']['PNEUMONIA']} patients), {r['unreadable']} unreadable",
        f"  temperature {r['temperature']:.3g} ({'refitted' if calibration.calibration['refit_used'] else 'kept'}),"
        f" threshold {r['threshold']:g} for sensitivity >= {r['target_sensitivity']:g}",
        f"  ECE {r['ece_before']:.3f} -> {r['ece_after']:.3f}, Brier {r['brier_before']:.3f} -> {r['brier_after']:.3f}",
        f"  on these images (chosen on them, optimistic): sensitivity {_pct(m, 'sensitivity')}, "
        f"specificity {_pct(m, 'specificity')}, accuracy {_pct(m, 'accuracy')}, AUROC {_pct(m, 'auroc')}",
    ]
    if cv:
        lines.append(f"  cross-validated ({cv['folds']} patient-grouped folds): sensitivity {_pct(cv, 'sensitivity')},"
                     f" specificity {_pct(cv, 'specificity')}, accuracy {_pct(cv, 'accuracy')}")
    lines.append(f"  {r['base_model']} at its own threshold: sensitivity {_pct(base, 'sensitivity')}, "
                 f"specificity {_pct(base, 'specificity')}, accuracy {_pct(base, 'accuracy')}")
    lines.append(f"use it with: --model {shlex.quote(entry.card.name)}")
    return "\n".join(lines)


def run(args) -> int:
    from core.training.dataset import labelled_samples
    from core.models.registry import ModelError
    from core.training.site_calibration import CalibrationRefused, calibrate_samples, register as register_entry

    folder = Path(args.folder)
    if not folder.is_dir():
        print(f"error: folder not found: {folder}", file=sys.stderr)
        return EXIT_USAGE
    if not 0.0 < args.target_sensitivity < 1.0:
        print("error: --target-sensitivity must be above 0 and below 1 (a target of 1 leaves no room "
              "for a single missed pneumonia, so no finite set can show it is met)", file=sys.stderr)
        return EXIT_USAGE
    samples = labelled_samples(folder)  # core.imaging.labelled: the window's and evaluate's definition too
    if not samples:
        print(f"error: no labelled images in {folder} (a labels.csv, or NORMAL/ and PNEUMONIA/ sub-folders)",
              file=sys.stderr)
        return EXIT_USAGE
    try:
        from core.screening.screener import configure_for_screening

        configure_for_screening()
        base, calibration = calibrate_samples(samples, args.model, args.target_sensitivity)
        entry = register_entry(base, calibration, args.name, source=args.folder, command=_command(args))
    except CalibrationRefused as exc:
        print(f"error: refused: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (ModelError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(summary(entry, calibration))
    return 0
