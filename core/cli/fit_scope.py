"""`pneumoscan-cli fit-scope FOLDER --model NAME`: (re)fit a model's scope detector.

Fits on the model's own training images only: the files listed in
`--split-json` (the `split.json` a training run writes), else the labelled
images of FOLDER minus the validation patients of the model's own split
(re-drawn from the card's split seed and fraction). A patient-grouped part of
those is held out to set the threshold for the false-flag rate. The detector
is saved next to the model (`<model stem>.scope.npz`) and recorded in its card.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from core.cli.command import UsageError
from core.cli.exit_codes import EXIT_FAILURE, EXIT_USAGE

HELDOUT_FRACTION = 0.2


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "fit-scope",
        help="(re)fit a model's scope check on its training images",
        description="Fit the image-content scope check of a registered model on its own training "
                    "images (never validation or out-of-scope images) and store it with the model. "
                    "Prints one JSON object with the detector's statistics.")
    parser.add_argument("folder", metavar="FOLDER", help="the model's training folder (NORMAL/ and PNEUMONIA/)")
    parser.add_argument("--model", metavar="NAME", required=True, help="registered model ('name' or 'name vN')")
    parser.add_argument("--false-flag-rate", type=float, default=0.01, metavar="R",
                        help="share of held-out training images the check may flag (default 0.01)")
    parser.add_argument("--split-json", metavar="PATH", default=None,
                        help="JSON listing the training files (a training run's split.json, "
                             "{\"train\": [...]}, or a list of paths); default: the model's own split")
    parser.add_argument("--batch-size", type=int, default=64, metavar="B")
    parser.add_argument("--seed", type=int, default=0, help="seed of the held-out draw (default 0)")
    parser.set_defaults(func=run)


def run(args) -> int:
    from core.models.registry import ModelError

    try:
        if not 0.0 < args.false_flag_rate < 0.5:
            raise UsageError(f"--false-flag-rate must be within (0, 0.5), got {args.false_flag_rate}")
        if not Path(args.folder).is_dir():
            raise UsageError(f"folder not found: {args.folder}")
        summary = fit_scope(args.folder, args.model, args.false_flag_rate, args.split_json,
                            args.batch_size, args.seed)
    except (UsageError, ModelError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        print(f"error: the scope detector could not be saved: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    print(json.dumps(summary))
    return 0


def fit_scope(folder, model_name: str, false_flag_rate: float = 0.01, split_json=None,
              batch_size: int = 64, seed: int = 0) -> dict:
    from core.models.registry import find_model, load_model, save_scope_detector
    from core.models.scope import fit_scope_detector, heldout_patients
    from core.screening.screener import configure_for_screening
    from core.training.trainer import decode_samples

    configure_for_screening()
    entry = find_model(model_name)
    loaded = load_model(entry, scope=False)  # an old or missing detector must not block its refit
    train, source = training_samples(folder, entry.card, split_json)
    fit_part, heldout_part = heldout_patients(train, HELDOUT_FRACTION, seed)
    size = int(entry.card.input_size)
    fit_x, fit_kept, bad_fit = decode_samples(fit_part, size)
    held_x, _, bad_held = decode_samples(heldout_part, size)
    detector = fit_scope_detector(loaded.keras_model, fit_x, held_x, false_flag_rate,
                                  architecture=entry.card.architecture, batch_size=batch_size,
                                  train_labels=[s.label for s in fit_kept])
    detector.counts.update(unreadable=len(bad_fit) + len(bad_held))
    save_scope_detector(entry, detector)
    return {"model": entry.label, "images_from": source, **entry.card.scope_detector}


def training_samples(folder, card, split_json=None) -> tuple[list, str]:
    """The model's training images (validation patients left out) and where the list came from."""
    from core.training.dataset import Sample, labelled_samples, own_split, patient_id

    if split_json:
        return _samples_from_json(Path(split_json), Path(folder), Sample, patient_id), f"split file {split_json}"
    samples = labelled_samples(folder)
    if not samples:
        raise UsageError(f"no images under NORMAL/ or PNEUMONIA/ in {folder}")
    split = own_split(samples, card.training_data)
    if split is None:
        return samples, "every labelled image of the folder (the card records no validation split)"
    train, _val, fraction, seed = split
    return train, f"the model's own split of the folder (seed {seed}, validation fraction {fraction} left out)"


def _samples_from_json(path: Path, folder: Path, sample_cls, patient_id) -> list:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot read --split-json {path}: {exc}") from None
    items = data.get("train") if isinstance(data, dict) else data
    if not isinstance(items, list) or not items:
        raise UsageError(f"--split-json {path} lists no training files (expected {{\"train\": [...]}} or a list)")
    samples, missing = [], 0
    for item in items:
        raw = item.get("path") if isinstance(item, dict) else item
        label = item.get("label", "") if isinstance(item, dict) else ""
        found = _existing(str(raw or ""), folder, path.parent)
        if found is None:
            missing += 1
            continue
        samples.append(sample_cls(str(found), label, patient_id(found)))
    if not samples:
        raise UsageError(f"none of the {len(items)} files in {path} exist here")
    if missing:
        print(f"warning: {missing} of {len(items)} listed training files were not found", file=sys.stderr)
    return samples


def _existing(raw: str, *bases: Path) -> Path | None:
    if not raw:
        return None
    candidate = Path(raw)
    options = [candidate] if candidate.is_absolute() else [candidate, *(base / candidate for base in bases)]
    return next((p for p in options if p.is_file()), None)
