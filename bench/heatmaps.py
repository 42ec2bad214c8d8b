"""Do the heatmaps sit on the lungs? Prints ONE JSON object.

    python bench/heatmaps.py [--folder ../shared/data/chest_xray/site_validation] [--model custom_cnn]
                             [--save-examples DIR]

For every image of the folder (at the model's input size): the lung fields by
core.models.lung_fields.estimate_lung_fields (a simple image-based estimate,
documented there), then for each map the model's card offers, the coarse
Grad-CAM (`gradcam_layer`), and with `--fine-methods` the finer layer (architectures.FINE_CAM_LAYER,
per-image scale) that the removed Fine map used (LayerCAM), for comparison:

- share of the map's heat outside the lung fields (mean and median over images,
  and over the images the model calls pneumonia at its threshold);
- how often the map's peak falls outside them.

The issue's aim is <= 20 % of the heat outside. `--save-examples` writes a few
overlays (lung outline in green) to look at.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DEFAULT_FOLDER = Path(__file__).resolve().parents[2] / "shared" / "data" / "chest_xray" / "site_validation"


def _summary(shares, peaks, called) -> dict:
    shares, peaks, called = np.asarray(shares, float), np.asarray(peaks, float), np.asarray(called, bool)
    ok = ~np.isnan(shares)

    def part(mask):
        empty = int((mask & ~ok).sum())  # no positive evidence at all: left out of the shares
        mask = mask & ok
        if not mask.any():
            return None
        return {"n": int(mask.sum()), "empty_maps": empty, "mean_share_outside": round(float(shares[mask].mean()), 4),
                "median_share_outside": round(float(np.median(shares[mask])), 4),
                "peak_outside_rate": round(float(peaks[mask].mean()), 4)}

    return {"all_images": part(np.ones_like(ok)), "called_pneumonia": part(called),
            "empty_maps": int((~ok).sum())}


def _maps_of(card) -> dict:
    return {"coarse_gradcam": (card.gradcam_layer, card.gradcam_reference, "gradcam")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", default=str(DEFAULT_FOLDER))
    parser.add_argument("--model", default=None, help="a registered model (default: the default model)")
    parser.add_argument("--save-examples", metavar="DIR")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--fine-methods", nargs="+", default=[],
                        help="also measure the fine layer with these methods (e.g. layercam layercam_smooth)")
    args = parser.parse_args(argv)

    from core.imaging.preprocessing import load_for_model
    from core.models.calibration import apply_temperature
    from core.models.gradcam import gradcam_for
    from core.models.lung_fields import estimate_lung_fields, heat_outside
    from core.models.registry import load_model
    from core.training.dataset import labelled_samples

    if not Path(args.folder).is_dir():
        print(json.dumps({"error": f"folder not found: {args.folder}"}))
        return 2
    loaded = load_model(args.model, scope=False)
    card = loaded.card
    samples = labelled_samples(args.folder)
    images = np.stack([load_for_model(s.path, card.input_size)[0] for s in samples])
    masks, prior_used = zip(*(estimate_lung_fields(image[..., 0]) for image in images))
    result = {"model": card.label, "folder": args.folder, "n": len(samples),
              "lung_fields": {"method": "core.models.lung_fields.estimate_lung_fields",
                              "prior_used": int(sum(prior_used)),
                              "mean_area_share": round(float(np.mean([m.mean() for m in masks])), 4),
                              # What a map spread evenly over the image would score: the no-skill line.
                              "uniform_map_share_outside": round(float(1.0 - np.mean([m.mean() for m in masks])), 4)},
              "maps": {}}
    from core.models.architectures import FINE_CAM_LAYER

    maps = _maps_of(card)
    for method in args.fine_methods:
        maps[f"fine_{method}"] = (FINE_CAM_LAYER, None, method)  # per-image scale: shares only
    for name, (layer, reference, method) in maps.items():
        cam = gradcam_for(loaded.keras_model, layer, reference, method)
        probs, cams = [], []
        for start in range(0, len(images), args.batch_size):
            p, c = cam(images[start:start + args.batch_size])
            probs.append(p)
            cams.append(c)
        probs, cams = np.concatenate(probs), np.concatenate(cams)
        called = apply_temperature(probs, card.temperature) >= card.threshold
        measured = [heat_outside(c, m) for c, m in zip(cams, masks)]
        shares = [np.nan if s is None else s for s, _ in measured]
        peaks = [np.nan if p is None else float(p) for _, p in measured]
        result["maps"][name] = {"layer": layer, "method": method, "grid": list(cams.shape[1:]),
                                **_summary(shares, peaks, called)}
        if args.save_examples:
            _save_examples(Path(args.save_examples), name, images, cams, masks, samples)
    result["target"] = "<= 20 % of the heat outside the lung fields (issue 21)"
    print(json.dumps(result, indent=1))
    return 0


def _save_examples(folder: Path, name: str, images, cams, masks, samples, count: int = 8) -> None:
    import cv2

    from core.models.gradcam import overlay

    folder.mkdir(parents=True, exist_ok=True)
    for index in np.linspace(0, len(images) - 1, count).astype(int):
        picture = overlay(images[index][..., 0], cams[index])
        contours, _ = cv2.findContours(masks[index].astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(picture, contours, -1, (0, 255, 0), 1)
        cv2.imwrite(str(folder / f"{name}-{Path(samples[index].path).stem}.png"), picture[..., ::-1])


if __name__ == "__main__":
    sys.exit(main())
