"""What a study folder holds: its image files and, when known, the truth.

Pure Python (no Qt) so it runs on worker threads and in plain unit tests.
Truth comes from a `labels.csv` (`path,label`, paths relative to the study
folder) when present, otherwise from NORMAL / PNEUMONIA sub-folders.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from core.imaging.discovery import discover_study
from core.imaging.loader import label_from_path
from core.screening.results import NEGATIVE, POSITIVE

LABELS_FILE = "labels.csv"

# Spellings accepted in labels.csv besides NORMAL / PNEUMONIA.
_LABEL_ALIASES = {
    "normal": NEGATIVE, "negative": NEGATIVE, "0": NEGATIVE,
    "pneumonia": POSITIVE, "positive": POSITIVE, "1": POSITIVE,
}


def path_key(path) -> str:
    """One spelling per file, so results, truth and decisions line up."""
    return str(Path(path).resolve())


@dataclass
class StudyFiles:
    folder: Path
    files: list[str]  # path keys, sorted
    truth: dict[str, str] = field(default_factory=dict)  # path key -> NORMAL|PNEUMONIA
    truth_source: str | None = None  # "labels.csv", "sub-folders" or None
    warnings: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason): not images

    @property
    def truth_known(self) -> bool:
        return bool(self.truth)

    def relative(self, key: str) -> str:
        try:
            return str(Path(key).relative_to(self.folder))
        except ValueError:
            return Path(key).name


def read_labels_csv(folder: Path) -> tuple[dict[str, str], list[str]]:
    """Truth from labels.csv: (path key -> label, warnings about bad lines)."""
    truth: dict[str, str] = {}
    warnings: list[str] = []
    with open(folder / LABELS_FILE, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = {name.strip().lower(): name for name in (reader.fieldnames or [])}
        if "path" not in columns or "label" not in columns:
            return {}, [f"{LABELS_FILE} needs the columns path,label"]
        for line_no, row in enumerate(reader, start=2):
            rel = (row.get(columns["path"]) or "").strip()
            label = _LABEL_ALIASES.get((row.get(columns["label"]) or "").strip().lower())
            if not rel or label is None:
                warnings.append(f"{LABELS_FILE} line {line_no}: unreadable path or label")
                continue
            truth[path_key(folder / rel)] = label
    return truth, warnings


def _discovery_warnings(found, folder: Path) -> list[str]:
    """One line naming the files that are not screened (nothing is dropped
    silently), plus one per damaged DICOMDIR."""
    def rel(path) -> str:
        try:
            return str(Path(path).relative_to(folder))
        except ValueError:
            return str(path)

    lines = [f"DICOMDIR {rel(path)}: {problem}" for path, problem in found.index_errors]
    if found.skipped:
        shown = "; ".join(f"{rel(path)} ({reason})" for path, reason in found.skipped[:3])
        more = f"; and {len(found.skipped) - 3} more" if len(found.skipped) > 3 else ""
        lines.insert(0, f"Skipped {len(found.skipped)} file(s) that are not images: {shown}{more}")
    return lines


def scan_study(folder) -> StudyFiles:
    """Discover the images of a study and their truth (file work: call off the GUI thread)."""
    folder = Path(folder).resolve()
    if not folder.is_dir():
        raise FileNotFoundError(f"study folder not found: {folder}")
    found = discover_study(folder)
    # labels.csv is read as the truth, not skipped: it is no news to the reader.
    found.skipped = [(p, r) for p, r in found.skipped if p != folder / LABELS_FILE]
    files = [path_key(p) for p in found.images]
    study = StudyFiles(folder=folder, files=files,
                       skipped=[(str(path), reason) for path, reason in found.skipped])
    study.warnings.extend(_discovery_warnings(found, folder))
    if (folder / LABELS_FILE).is_file():
        truth, warnings = read_labels_csv(folder)
        known = set(files)
        study.truth = {k: v for k, v in truth.items() if k in known}
        study.warnings = study.warnings + warnings
        study.truth_source = LABELS_FILE if study.truth else None
        return study
    for key in files:
        # Relative to the folder's parent: opening ".../PNEUMONIA" itself still
        # labels its files, while folders above the study never do.
        label = label_from_path(Path(key).relative_to(folder.parent))
        if label is not None:
            study.truth[key] = label
    study.truth_source = "sub-folders" if study.truth else None
    return study
