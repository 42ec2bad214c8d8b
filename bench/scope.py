"""Scope check benchmark: prints ONE JSON object.

    python bench/scope.py --model NAME --ood OOD_DIR [--in-scope DIR ...]
                          [--fit TRAIN_FOLDER] [--false-flag-rate 0.01] [--variants]

- flag rates of the content detector (both criteria; and of detector +
  metadata rules), with the content reasons given, on each category folder
  of OOD_DIR (packaging/make_ood_set.py writes one) and on each --in-scope
  folder (default: ../shared/data/chest_xray/site_validation);
- with --variants, flag rates on each --in-scope folder's images tilted 5/10/15
  degrees, brighter/darker (gamma 0.7/1.5), mirrored, padded with a black
  border (few should be flagged),
  and re-framed like a square or portrait adult film (square_film,
  adult_framing: most should be);
- the same for a plain Mahalanobis on the model's global-average-pooled last
  layer (the baseline the issue names), fitted on the same images at the same
  false-flag rate;
- cost: ms per image of the batched model step without and with the check.

With --fit, the detector is fitted in memory on the model's own training split
of TRAIN_FOLDER (as `pneumoscan-cli fit-scope` does; nothing is saved); else the
model's stored detector is used and the baseline is left out.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "tests")]  # tests/ood_data.py makes the variants
SITE = REPO_ROOT.parent / "shared" / "data" / "chest_xray" / "site_validation"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None)
    parser.add_argument("--ood", type=Path, required=True, help="folder of out-of-scope category folders")
    parser.add_argument("--in-scope", type=Path, action="append", default=None)
    parser.add_argument("--fit", type=Path, default=None, help="training folder: fit in memory first")
    parser.add_argument("--false-flag-rate", type=float, default=0.01)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--variants", action="store_true",
                        help="also the in-scope folders' images tilted, brighter/darker, mirrored and "
                             "re-framed like adult films")
    return parser.parse_args(argv)


def decode_folder(folder: Path, size: int):
    """(uint8 inputs (N, S, S, 1), metas, category per image) for every readable file below folder."""
    from core.imaging.discovery import discover
    from core.imaging.loader import ImageLoadError
    from core.imaging.preprocessing import load_for_model, to_uint8

    images, metas, categories = [], [], []
    for path in discover(folder):
        try:
            x, loaded = load_for_model(path, size)
        except ImageLoadError:
            continue
        images.append(to_uint8(x))
        metas.append(loaded.meta or {})
        categories.append(str(path.parent.relative_to(folder)))
    return np.stack(images), metas, categories


def fit_in_memory(loaded, folder: Path, false_flag_rate: float, batch_size: int):
    """Ours and the baseline, fitted on the same split of the model's training images."""
    from core.cli.fit_scope import HELDOUT_FRACTION, training_samples
    from core.models.scope import compile_scope_forward, extract_features, fit_from_features, heldout_patients, scope_layers
    from core.training.trainer import decode_samples

    train, _ = training_samples(folder, loaded.card)
    fit_part, held_part = heldout_patients(train, HELDOUT_FRACTION, 0)
    size = loaded.input_size
    fit_x, fit_kept, _ = decode_samples(fit_part, size)
    held_x, _, _ = decode_samples(held_part, size)
    layers = scope_layers(loaded.keras_model, loaded.card.architecture)
    forward = compile_scope_forward(loaded.keras_model, layers)
    _, fit_blocks = extract_features(forward, fit_x, batch_size)
    _, held_blocks = extract_features(forward, held_x, batch_size)
    detector = fit_from_features(layers, fit_blocks, held_blocks, false_flag_rate, layout_images=(fit_x, held_x),
                                 fit_labels=[s.label for s in fit_kept])
    baseline = Baseline.fit(fit_blocks[len(layers) - 1], held_blocks[len(layers) - 1], false_flag_rate)
    return detector, baseline


class Baseline:
    """Plain Mahalanobis (Ledoit-Wolf) on the last layer's global average pool (the mean half)."""

    def __init__(self, lw, threshold):
        self.lw, self.threshold = lw, threshold

    @classmethod
    def fit(cls, fit_pooled, held_pooled, false_flag_rate):
        from sklearn.covariance import LedoitWolf

        half = fit_pooled.shape[1] // 2
        lw = LedoitWolf().fit(fit_pooled[:, :half])
        threshold = np.quantile(lw.mahalanobis(held_pooled[:, :half]), 1 - false_flag_rate)
        return cls(lw, threshold)

    def flags(self, pooled):
        return self.lw.mahalanobis(pooled[:, : pooled.shape[1] // 2]) > self.threshold


def check(forward, detector, images, batch_size: int) -> tuple[np.ndarray, list[str], list[np.ndarray]]:
    """(raw probabilities, content reason per image, feature blocks) of uint8 images, in one pass."""
    from core.models.scope import extract_features

    probs, blocks = extract_features(forward, images, batch_size)
    _, reasons = detector.assess(blocks[:-1], images.astype(np.float32) / 255.0)
    return probs, reasons, blocks


def flag_rates(forward, loaded, detector, baseline, decoded, batch_size: int) -> dict:
    """Flag rates per category folder of one decoded folder (see `decode_folder`)."""
    from core.models.scope import metadata_reason, population_of

    images, metas, categories = decoded
    _, reasons, blocks = check(forward, detector, images, batch_size)
    population = population_of(loaded.card)
    by_meta = [bool(metadata_reason(m, population)) for m in metas]
    base = baseline.flags(blocks[len(detector.layers) - 1]) if baseline else None
    return rates_by_category(reasons, categories, by_meta, base)


def rates_by_category(reasons: list[str], categories: list[str], by_meta=None, base=None) -> dict:
    content = np.array([bool(r) for r in reasons])
    by_meta = np.zeros(len(reasons), bool) if by_meta is None else np.asarray(by_meta, bool)
    out = {}
    for category in sorted(set(categories)):
        mask = np.array([c == category for c in categories])
        out[category] = {"n": int(mask.sum()), "content": round(float(content[mask].mean()), 4),
                         "content_or_metadata": round(float((content | by_meta)[mask].mean()), 4),
                         "reasons": dict(Counter(r for r, m in zip(reasons, mask) if m and r))}
        if base is not None:
            out[category]["baseline"] = round(float(base[mask].mean()), 4)
    return out


def variant_rates(forward, loaded, detector, decoded, batch_size: int) -> dict:
    """Flag rates on a decoded folder's images altered (tests/ood_data.py): tilts, gamma, a mirror
    and a black border (in scope: few should be flagged), and the framing proxies for adult films.

    Where the folder is labelled (NORMAL/ and PNEUMONIA/), also what the alteration does to
    the model: AUROC, sensitivity and specificity at the card's threshold, all images counted
    (so "original" says how far each alteration moves the calls the check should guard).
    """
    import ood_data

    images, _, categories = decoded
    chests = [image[..., 0] for image in images]
    proxies = ood_data.scale_proxies(chests)
    altered = {"original": chests, **ood_data.in_scope_variants(chests),
               **{name: proxies[name] for name in ("square_film", "adult_framing")}}
    truth = np.array([str(c).upper() == "PNEUMONIA" for c in categories])
    labelled = set(str(c).upper() for c in categories) == {"NORMAL", "PNEUMONIA"}
    out = {}
    for name, variant in altered.items():
        probs, reasons, _ = check(forward, detector, as_screened(variant), batch_size)
        out[name] = rates_by_category(reasons, ["all"] * len(reasons))["all"]
        if labelled:
            out[name]["model"] = model_metrics(loaded, probs, truth)
    return out


def as_screened(images: list[np.ndarray]) -> np.ndarray:
    """uint8 (N, S, S, 1): altered uint8 images prepared as screening prepares a file
    (core.imaging.preprocessing: blank borders trimmed, then resized)."""
    from core.imaging.preprocessing import film_to_model_input, to_uint8

    return np.stack([to_uint8(film_to_model_input(image.astype(np.float32) / 255.0, image.shape[0])[0])
                     for image in images])


def model_metrics(loaded, raw_probabilities, truth) -> dict:
    """The calibrated model's AUROC, sensitivity and specificity at its card's threshold."""
    from sklearn.metrics import roc_auc_score

    from core.models.calibration import apply_temperature

    probs = apply_temperature(raw_probabilities, float(loaded.card.temperature or 1.0))
    called = probs >= float(loaded.card.threshold)
    return {"auroc": round(float(roc_auc_score(truth, probs)), 4),
            "sensitivity": round(float(called[truth].mean()), 4),
            "specificity": round(float(1.0 - called[~truth].mean()), 4)}


def cost_ms(loaded, batch_size: int, images: np.ndarray, repeats: int = 5) -> dict:
    """ms per image of Screener.predict_batch without and with the check (same batches)."""
    import dataclasses

    from core.screening.screener import Screener

    batch = images[:batch_size].astype(np.float32) / 255.0
    timings = {}
    for label, model in (("without_scope_ms", dataclasses.replace(loaded, scope_detector=None)),
                         ("with_scope_ms", loaded)):
        screener = Screener(model, batch_size=batch_size)
        screener.predict_batch(batch)  # trace
        started = time.perf_counter()
        for _ in range(repeats):
            screener.predict_batch(batch)
        timings[label] = round(1000 * (time.perf_counter() - started) / (repeats * len(batch)), 3)
    timings["scope_cost"] = round(timings["with_scope_ms"] / timings["without_scope_ms"] - 1.0, 3)
    return timings


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from core.models.registry import load_model
    from core.screening.screener import configure_for_screening

    device = configure_for_screening()
    loaded = load_model(args.model, scope=args.fit is None)
    baseline = None
    if args.fit:
        loaded.scope_detector, baseline = fit_in_memory(loaded, args.fit, args.false_flag_rate, args.batch_size)
    if loaded.scope_detector is None:
        raise SystemExit("error: the model has no scope detector: fit one (pneumoscan-cli fit-scope) or pass --fit")
    from core.models.scope import compile_scope_forward

    detector = loaded.scope_detector
    forward = compile_scope_forward(loaded.keras_model, detector.layers)  # traced once for every folder
    ood_decoded = decode_folder(args.ood, loaded.input_size)
    ood = flag_rates(forward, loaded, detector, baseline, ood_decoded, args.batch_size)
    in_scope, variants = {}, {}
    for folder in args.in_scope or [SITE]:
        decoded = decode_folder(folder, loaded.input_size)
        in_scope[str(folder)] = flag_rates(forward, loaded, detector, baseline, decoded, args.batch_size)
        if args.variants:
            variants[str(folder)] = variant_rates(forward, loaded, detector, decoded, args.batch_size)
    rule = [c for c in ood if not c.startswith("proxies")]
    total = sum(ood[c]["n"] for c in rule)
    summary = {key: round(sum(ood[c][key] * ood[c]["n"] for c in rule) / total, 4)
               for key in ("content", "content_or_metadata", *(("baseline",) if baseline else ()))}
    images = ood_decoded[0]
    print(json.dumps({
        "model": loaded.card.label, "device": device, "detector": loaded.scope_detector.summary(),
        "ood_flagged": summary, "ood_images": total, "ood_by_category": ood, "in_scope_flagged": in_scope,
        **({"in_scope_variants_flagged": variants} if args.variants else {}),
        "cost": cost_ms(loaded, args.batch_size, images),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
