"""Labelled samples, patient ids and the patient-grouped validation split."""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.loader import discover, label_from_path
from core.results import NEGATIVE, POSITIVE

CLASSES = (NEGATIVE, POSITIVE)  # index = training target (0 normal, 1 pneumonia)
_PERSON = re.compile(r"^(person\d+)_", re.IGNORECASE)
_IMAGE_SEQUENCE = re.compile(r"^(.+)-\d+$")


@dataclass(frozen=True)
class Sample:
    path: str
    label: str  # NORMAL or PNEUMONIA
    patient: str

    @property
    def target(self) -> int:
        return CLASSES.index(self.label)


def patient_id(path: str | Path, dicom_patient: str | None = None) -> str:
    """Patient id from a Kermany-style file name (or DICOM PatientID when known).

    `person1199_bacteria_3149.jpeg` -> `person1199`; `IM-0115-0001.jpeg` ->
    `IM-0115`; `NORMAL2-IM-0381-0001.jpeg` -> `NORMAL2-IM-0381`. Unknown
    patterns fall back to the file stem (one image per patient: the safe side
    would be merging, but we cannot know whom to merge).
    """
    if dicom_patient:
        return f"dicom:{dicom_patient}"
    stem = Path(path).stem
    match = _PERSON.match(stem)
    if match:
        return match.group(1).lower()
    match = _IMAGE_SEQUENCE.match(stem)
    return match.group(1) if match else stem


def labelled_samples(folder: str | Path) -> list[Sample]:
    """Every image below NORMAL/PNEUMONIA sub-folders of `folder` (others skipped)."""
    samples = []
    for path in discover(folder):
        label = label_from_path(path.relative_to(folder))
        if label:
            samples.append(Sample(str(path), label, patient_id(path)))
    return samples


def class_counts(samples: list[Sample]) -> dict[str, int]:
    counts = Counter(s.label for s in samples)
    return {c: counts.get(c, 0) for c in CLASSES}


def patients_needed(val_fraction: float) -> int:
    """Distinct patients `grouped_split` needs: one per fold of the split."""
    return max(2, round(1.0 / val_fraction))


def grouped_split(samples: list[Sample], val_fraction: float = 0.15, seed: int = 0
                  ) -> tuple[list[Sample], list[Sample]]:
    """Stratified, patient-grouped split: no patient appears on both sides."""
    from sklearn.model_selection import StratifiedGroupKFold

    if not 0.0 < val_fraction < 0.5:
        raise ValueError("val_fraction must be between 0 and 0.5")
    n_splits = patients_needed(val_fraction)
    targets = np.array([s.target for s in samples])
    groups = np.array([s.patient for s in samples])
    n_groups = len(set(groups))
    if n_groups < n_splits:
        raise ValueError(f"only {n_groups} patients: too few for a {val_fraction:.0%} patient-grouped split")
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    train_idx, val_idx = next(splitter.split(np.zeros(len(samples)), targets, groups))
    return [samples[i] for i in train_idx], [samples[i] for i in val_idx]
