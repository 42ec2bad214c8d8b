"""The labelled images of a folder: the one definition of "truth" that the GUI's study,
`pneumoscan-cli evaluate` / `calibrate` and training all read.

- `labels.csv` in the folder (`path,label[,patient]`, paths relative to the folder)
  when present: it alone is the truth;
- otherwise NORMAL / PNEUMONIA class sub-folders, read relative to the folder's parent,
  so that opening `.../PNEUMONIA` itself still labels its files while folders above
  the study never do.

Images come from core.imaging.discovery (the same search the screening uses); files
that are not images are listed with the reason. Reader decisions as labels are a
reading matter (core.reading.decision_labels).
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from core.imaging.discovery import discover_study
from core.imaging.loader import LABELS, label_from_path

LABELS_FILE = "labels.csv"
SOURCE_CSV, SOURCE_FOLDERS = LABELS_FILE, "sub-folders"

# Spellings accepted in labels.csv besides NORMAL / PNEUMONIA.
_LABEL_ALIASES = {
    "normal": LABELS[0], "negative": LABELS[0], "0": LABELS[0],
    "pneumonia": LABELS[1], "positive": LABELS[1], "1": LABELS[1],
}


def path_key(path) -> str:
    """One spelling per file (absolute, symlinks followed), so results, truth and decisions line up."""
    return str(Path(path).resolve())


@dataclass
class LabelledFolder:
    folder: Path
    files: list[str]  # every image found (path keys, sorted), labelled or not
    truth: dict[str, str] = field(default_factory=dict)  # path key -> NORMAL | PNEUMONIA
    patients: dict[str, str] = field(default_factory=dict)  # path key -> labels.csv patient
    source: str | None = None  # SOURCE_CSV, SOURCE_FOLDERS or None
    warnings: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason): not images
    index_errors: list[tuple[str, str]] = field(default_factory=list)  # damaged DICOMDIRs

    @property
    def labelled(self) -> list[tuple[str, str]]:
        """(path key, label) of every labelled image, in file order."""
        return [(key, self.truth[key]) for key in self.files if key in self.truth]


def read_labels_csv(folder: Path) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """(path key -> label, path key -> patient, warnings about bad lines) from labels.csv."""
    truth: dict[str, str] = {}
    patients: dict[str, str] = {}
    warnings: list[str] = []
    try:
        with open(folder / LABELS_FILE, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = {name.strip().lower(): name for name in (reader.fieldnames or []) if name}
            if "path" not in columns or "label" not in columns:
                return {}, {}, [f"{LABELS_FILE} needs the columns path,label[,patient]"]
            for line_no, row in enumerate(reader, start=2):
                rel = (row.get(columns["path"]) or "").strip()
                label = _LABEL_ALIASES.get((row.get(columns["label"]) or "").strip().lower())
                if not rel or label is None:
                    warnings.append(f"{LABELS_FILE} line {line_no}: unreadable path or label")
                    continue
                key = path_key(folder / rel)
                truth[key] = label
                patient = (row.get(columns["patient"]) or "").strip() if "patient" in columns else ""
                if patient:
                    patients[key] = patient
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        return {}, {}, [f"{LABELS_FILE} cannot be read: {exc}"]
    return truth, patients, warnings


def labelled_folder(folder) -> LabelledFolder:
    """Every image below `folder` and its truth (file work: call off the GUI thread)."""
    folder = Path(folder).expanduser().resolve()
    if not folder.is_dir():
        raise FileNotFoundError(f"folder not found: {folder}")
    found = discover_study(folder)
    # labels.csv is read as the truth, not skipped: it is no news to the reader.
    skipped = [(str(p), r) for p, r in found.skipped if p != folder / LABELS_FILE]
    result = LabelledFolder(folder=folder, files=[path_key(p) for p in found.images], skipped=skipped,
                            index_errors=[(str(p), r) for p, r in found.index_errors])
    known = set(result.files)
    if (folder / LABELS_FILE).is_file():
        truth, patients, result.warnings = read_labels_csv(folder)
        missing = sorted(set(truth) - known)
        if missing:
            result.warnings.append(f"{LABELS_FILE} names {len(missing)} file(s) that are not images "
                                   f"of this folder, e.g. {Path(missing[0]).name}")
        result.truth = {k: v for k, v in truth.items() if k in known}
        result.patients = {k: v for k, v in patients.items() if k in known}
        result.source = SOURCE_CSV if result.truth else None
        return result
    for key in result.files:
        label = label_from_path(Path(key).relative_to(folder.parent))
        if label is not None:
            result.truth[key] = label
    result.source = SOURCE_FOLDERS if result.truth else None
    return result
