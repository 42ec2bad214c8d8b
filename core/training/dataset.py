"""Labelled samples, patient ids and the patient-grouped validation split."""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.imaging.dicom import read_header
from core.imaging.discovery import discover
from core.imaging.loader import IMAGE_SUFFIXES, label_from_path
from core.screening.results import NEGATIVE, POSITIVE

CLASSES = (NEGATIVE, POSITIVE)  # index = training target (0 normal, 1 pneumonia)
_PERSON = re.compile(r"^(person\d+)_", re.IGNORECASE)
# Kermany image sequences: IM-0117-0001 -> IM-0117, NORMAL2-IM-1427-0001 -> NORMAL2-IM-1427.
_KERMANY_SEQUENCE = re.compile(r"^((?:[A-Za-z0-9]+-)?IM-\d+)-\d+$")
# Suffixes that never hold DICOM, so no header is read for them.
_RASTER_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"}


@dataclass(frozen=True)
class Sample:
    path: str
    label: str  # NORMAL or PNEUMONIA
    patient: str

    @property
    def target(self) -> int:
        return CLASSES.index(self.label)


def patient_id(path: str | Path, dicom_patient: str | None = None) -> str:
    """Who the image belongs to, for patient-grouped splits (a leak decides here).

    In order:
    1. DICOM PatientID (given, or read from the file's header only), with
       its issuer when stated -> `dicom:<issuer>/<id>` or `dicom:<id>`;
    2. Kermany file names, which carry the patient across folders:
       `person1199_bacteria_3149.jpeg` -> `person1199`, `IM-0115-0001.jpeg`
       -> `IM-0115`, `NORMAL2-IM-0381-0001.jpeg` -> `NORMAL2-IM-0381`;
    3. otherwise the file itself, folder included (`file:<folder>/<stem>`):
       `p1/IM-0001.dcm` and `p2/IM-0001.dcm`, or `p1/1.dcm` and `p2/1.dcm`,
       are different patients. Never merging unknown files is the rule: a
       merge of different patients could not be undone by the reader.
    """
    path = Path(path)
    if dicom_patient is None and path.suffix.lower() not in _RASTER_SUFFIXES:
        dicom_patient = _dicom_patient(path)
    if dicom_patient and str(dicom_patient).strip():
        return f"dicom:{str(dicom_patient).strip()}"
    stem = path.stem if path.suffix.lower() in IMAGE_SUFFIXES else path.name
    match = _PERSON.match(stem)
    if match:
        return match.group(1).lower()
    match = _KERMANY_SEQUENCE.match(stem)
    if match:
        return match.group(1)
    return f"file:{(path.parent / stem).as_posix()}"


def _dicom_patient(path: Path) -> str | None:
    """PatientID (with IssuerOfPatientID when present) from the header, or None."""
    ds = read_header(path)
    if ds is None:
        return None
    patient = str(ds.get("PatientID", "") or "").strip()
    issuer = str(ds.get("IssuerOfPatientID", "") or "").strip()
    if not patient:
        return None
    return f"{issuer}/{patient}" if issuer else patient


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
