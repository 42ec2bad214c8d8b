"""Install a finalised v2 candidate as a shipped model in models/ (maintainers' tool).

    python packaging/ship_v2.py STAGED.keras NAME --version 2 [--default]

STAGED.keras is a model registered by `pneumoscan-cli train` / `train --finalise`
(its card and scope detector beside it). The shipped copy gets the plain name
(models/NAME.keras), its card states intended use, population and known limits,
the training folder relative to the repository, and its external validation on
../shared/data/chest_xray/site_validation at its own operating point (metrics
with 95 % intervals, ECE, Brier). Then run packaging/hash_shipped_models.py.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SITE = Path("../shared/data/chest_xray/site_validation")  # relative to the repository
TRAIN = "../shared/data/chest_xray/train"

INTENDED_USE = {
    "use": ("Research use only, not a medical device. Second-reader screening of frontal "
            "(PA/AP) paediatric chest radiographs for pneumonia, with Grad-CAM evidence maps; "
            "every call is reviewed by a reader."),
    "population": {
        "description": ("children aged 1-5 years, frontal chest X-rays from Guangzhou Women and "
                        "Children's Medical Center (Kermany et al. 2018, CC BY 4.0)"),
        "age_years": [0, 6],
        "modalities": ["CR", "DX"],
        "views": ["PA", "AP"],
    },
    "known_limits": [
        "Adult chest X-rays are outside its population: v1 models scored AUROC 0.33-0.42 on 400 "
        "adult images from another hospital and called 83-94 % of the adult normals pneumonia; "
        "the scope check flags DICOM files by PatientAge and, from the image alone, chest X-rays "
        "framed closer or wider than the training films (about 85 % of paediatric films cropped to "
        "an adult framing), but it was never measured on adult images: an adult image without "
        "metadata may still get through.",
        "Lateral views, other body parts and other modalities are outside its scope (flagged "
        "from DICOM metadata where present, else by the image-content check).",
        "Bacterial and viral pneumonia are not told apart; other findings are not detected.",
        "Thresholds are chosen on the training site's images; another site should calibrate "
        "(pneumoscan-cli calibrate) on its own labelled cases before relying on the operating point.",
    ],
}


def main() -> int:
    if sys.argv[1:2] == ["--record-site"]:
        return record_site(sys.argv[2])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("staged", help="the finalised candidate's .keras (card beside it)")
    parser.add_argument("name")
    parser.add_argument("--version", type=int, default=2)
    parser.add_argument("--command", required=True, help="the exact command that trained it")
    parser.add_argument("--note", default="", help="appended to the card's notes")
    parser.add_argument("--selection", help="JSON file with the recipe comparison to record")
    args = parser.parse_args()

    from core import paths
    from core.models.registry import entry_from_file, load_model, load_scope_detector, save_model, save_scope_detector

    staged = entry_from_file(args.staged)
    loaded = load_model(staged)
    detector = load_scope_detector(staged)
    card = staged.card
    card.name, card.version, card.created = args.name, args.version, ""
    card.training_command = args.command
    card.training_data["folder"] = TRAIN
    card.intended_use = INTENDED_USE
    if args.note:
        card.notes = f"{card.notes}; {args.note}" if card.notes else args.note
    if args.selection:
        card.training_data["recipe_selection"] = json.loads(Path(args.selection).read_text(encoding="utf-8"))
    models = paths.shipped_models_dir()
    for suffix in (".keras", ".json", ".scope.npz"):
        (models / f"{args.name}{suffix}").unlink(missing_ok=True)  # the previous version stays in git history
    entry = save_model(loaded.keras_model, card, models)
    if detector is not None:
        entry = save_scope_detector(entry, detector)
    # The registry trusts a shipped file only through the built-in hash table: rebuild it,
    # then measure in a fresh process that imports the new table.
    import subprocess

    subprocess.run([sys.executable, str(ROOT / "packaging" / "hash_shipped_models.py")], check=True)
    return subprocess.run([sys.executable, __file__, "--record-site", args.name]).returncode


def record_site(name: str) -> int:
    from core import paths
    from core.files import write_text_atomically
    from core.models.registry import entry_from_file
    from core.training.site_calibration import site_validation_record

    entry = entry_from_file(paths.shipped_models_dir() / f"{name}.keras")
    site = (ROOT / SITE).resolve()
    record = site_validation_record(entry, site)
    record["folder"] = str(SITE)
    entry.card.site_validation = record
    write_text_atomically(entry.card_path, entry.card.to_json())
    m = record["metrics"]
    print(f"{entry.keras_path.name}: site_validation AUROC {m['auroc']:.4f} {m['ci95'].get('auroc')}, "
          f"sensitivity {m['sensitivity']:.3f}, specificity {m['specificity']:.3f}, "
          f"accuracy {m['accuracy']:.3f}, ECE {record['ece']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
