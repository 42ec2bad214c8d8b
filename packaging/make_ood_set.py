"""Write a local out-of-scope test set (nothing is downloaded):

    python packaging/make_ood_set.py OUT_DIR [--chest-folder DIR] [--per-kind 20] [--seed 0]

OUT_DIR/<category>/<n>.png for every category of tests/ood_data.py (pydicom's
CT/MR/US/... test images as PNG, so only the content check can see them;
drawn documents, photos, noise, gradients, checkerboards; inverted, upside-down,
rotated and one-lung versions of chest X-rays from --chest-folder), plus
OUT_DIR/dicom/ with the decodable pydicom test files themselves (metadata
check) and OUT_DIR/proxies/ (zoom_in, zoom_out, closer_*, adult_framing: not out of scope by rule:
a thorax of another size, a hint for adult images). Use chest X-rays the model
was not fitted on (e.g. its validation patients).
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import cv2

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "tests")]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--chest-folder", type=Path,
                        default=REPO_ROOT.parent / "shared" / "data" / "chest_xray" / "site_validation")
    parser.add_argument("--chest-images", type=int, default=40)
    parser.add_argument("--per-kind", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import numpy as np

    import ood_data
    from core.imaging.discovery import discover

    chest = discover(args.chest_folder)
    if not chest:
        print(f"error: no images in {args.chest_folder}", file=sys.stderr)
        return 2
    rng = np.random.default_rng(args.seed)
    chest = [chest[i] for i in sorted(rng.choice(len(chest), min(args.chest_images, len(chest)), replace=False))]
    categories = ood_data.out_of_scope_set(chest, args.per_kind, args.seed)
    proxies = ood_data.scale_proxies(ood_data.load_chest_images(chest), args.seed)
    counts = {}
    for base, groups in ((args.out, categories), (args.out / "proxies", proxies)):
        for name, images in groups.items():
            folder = base / name
            folder.mkdir(parents=True, exist_ok=True)
            for i, image in enumerate(images):
                cv2.imwrite(str(folder / f"{i:03d}.png"), image)
            counts[name] = len(images)
    dicom_dir = args.out / "dicom"
    dicom_dir.mkdir(parents=True, exist_ok=True)
    from core.imaging.loader import ImageLoadError, load_image

    for path in ood_data.pydicom_test_files():
        try:
            load_image(path, max_side=448)
        except (ImageLoadError, Exception):
            continue
        shutil.copy(path, dicom_dir / path.name)
    counts["dicom"] = len(list(dicom_dir.iterdir()))
    print(counts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
