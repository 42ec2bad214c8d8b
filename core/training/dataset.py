"""Labelled samples, patient ids and the patient-grouped validation split."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Patients and labelled folders have one definition each (core.imaging); re-exported here
# for the training code that has always imported them from this module.
from core.imaging.labelled import labelled_folder
from core.imaging.patients import patient_id
from core.screening.results import NEGATIVE, POSITIVE

CLASSES = (NEGATIVE, POSITIVE)  # index = training target (0 normal, 1 pneumonia)


@dataclass(frozen=True)
class Sample:
    path: str
    label: str  # NORMAL or PNEUMONIA
    patient: str

    @property
    def target(self) -> int:
        return CLASSES.index(self.label)


def labelled_samples(folder: str | Path) -> list[Sample]:
    """Every labelled image of `folder` (core.imaging.labelled: labels.csv, else
    NORMAL/PNEUMONIA sub-folders), with its patient (core.imaging.patients)."""
    found = labelled_folder(folder)
    return [Sample(path, label, patient_id(path, labelled=found.patients.get(path)))
            for path, label in found.labelled]


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


def own_split(samples: list[Sample], training_data: dict | None
              ) -> tuple[list[Sample], list[Sample], float, int] | None:
    """A model's own (train, validation, fraction, seed) split of `samples`, as its card's
    training_data records it; None where the card records no split."""
    data = training_data or {}
    fraction, seed = data.get("val_fraction"), data.get("split_seed")
    if fraction is None or seed is None:
        return None
    train, val = grouped_split(samples, float(fraction), int(seed))
    return train, val, float(fraction), int(seed)
