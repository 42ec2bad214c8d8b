"""What a study folder holds for reading: its image files, the truth when known, the
patient each labels.csv names, and the files that are not images (with the reason).

Built on the one definition of a labelled folder (core.imaging.labelled), so the
window, `pneumoscan-cli report` and `evaluate` see the same files and the same truth.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from core.imaging.discovery import display_path
from core.imaging.labelled import LABELS_FILE, labelled_folder, path_key

__all__ = ["LABELS_FILE", "StudyFiles", "path_key", "scan_study"]


@dataclass
class StudyFiles:
    folder: Path
    files: list[str]  # path keys, sorted
    truth: dict[str, str] = field(default_factory=dict)  # path key -> NORMAL|PNEUMONIA
    patients: dict[str, str] = field(default_factory=dict)  # path key -> labels.csv patient
    warnings: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason): not images

    @property
    def truth_known(self) -> bool:
        return bool(self.truth)

    @property
    def files_found(self) -> int:
        """Every file the report accounts for: the images and the files skipped."""
        return len(self.files) + len(self.skipped)

    def relative(self, key: str) -> str:
        try:
            return Path(key).relative_to(self.folder).as_posix()
        except ValueError:
            return Path(key).name


def _discovery_warnings(skipped, index_errors, folder: Path) -> list[str]:
    """One line naming the files that are not screened (nothing is dropped silently),
    plus one per damaged DICOMDIR."""
    def rel(path) -> str:
        try:
            return display_path(Path(path).relative_to(folder))
        except ValueError:
            return display_path(path)

    lines = [f"DICOMDIR {rel(path)}: {problem}" for path, problem in index_errors]
    if skipped:
        shown = "; ".join(f"{rel(path)} ({reason})" for path, reason in skipped[:3])
        more = f"; and {len(skipped) - 3} more" if len(skipped) > 3 else ""
        lines.insert(0, f"Skipped {len(skipped)} file(s) that are not images: {shown}{more}")
    return lines


def scan_study(folder) -> StudyFiles:
    """Discover the images of a study and their truth (file work: call off the GUI thread)."""
    try:
        found = labelled_folder(folder)
    except FileNotFoundError:
        raise FileNotFoundError(f"study folder not found: {Path(folder).expanduser().resolve()}") from None
    warnings = _discovery_warnings(found.skipped, found.index_errors, found.folder) + found.warnings
    return StudyFiles(folder=found.folder, files=found.files, truth=found.truth, patients=found.patients,
                      warnings=warnings, skipped=found.skipped)
