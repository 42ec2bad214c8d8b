"""Who an image belongs to: the one definition of a patient (training splits, the reading
session's grouping, the report and its CSV all use it).

A patient is what the data says, in this order:
1. the DICOM PatientID, with its issuer when stated (`dicom:<issuer>/<id>`, `dicom:<id>`);
2. a `patient` column of the study's labels.csv (`label:<value>`);
3. the known naming of the Kermany training set, which carries the patient across
   folders: `person1199_bacteria_3149` -> `person1199`, `IM-0115-0001` and
   `IM-0115-0001-0002` -> `IM-0115`, `NORMAL2-IM-0381-0001` -> `NORMAL2-IM-0381`;
4. otherwise the file itself (`file:<folder>/<stem>`).

A folder name alone never makes a patient: ten adult films of ten people in `adults/`
are ten patients. Never merging unknown files is the rule, because a merge of
different patients could not be undone by the reader.
"""
from __future__ import annotations

import re
from pathlib import Path

from core.imaging.dicom import read_header
from core.imaging.loader import IMAGE_SUFFIXES

DICOM, LABELLED, FILE = "dicom:", "label:", "file:"
_PERSON = re.compile(r"^(person\d+)_", re.IGNORECASE)
# Kermany image sequences: one or more numeric parts after the patient's IM-number.
_KERMANY_SEQUENCE = re.compile(r"^((?:[A-Za-z0-9]+-)?IM-\d+)(?:-\d+)+$")
# Suffixes that never hold DICOM, so no header is read for them.
_RASTER_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff"}


def dicom_patient_of(meta: dict | None) -> str:
    """'<issuer>/<id>' or '<id>' from DICOM attributes (a result's meta), '' when absent."""
    meta = meta or {}
    patient = str(meta.get("PatientID") or "").strip()
    issuer = str(meta.get("IssuerOfPatientID") or "").strip()
    if not patient:
        return ""
    return f"{issuer}/{patient}" if issuer else patient


def kermany_patient(path) -> str | None:
    """The patient a Kermany file name carries, or None for any other name."""
    path = Path(path)
    stem = path.stem if path.suffix.lower() in IMAGE_SUFFIXES else path.name
    match = _PERSON.match(stem)
    if match:
        return match.group(1).lower()
    match = _KERMANY_SEQUENCE.match(stem)
    return match.group(1) if match else None


def patient_id(path: str | Path, dicom_patient: str | None = None, labelled: str | None = None) -> str:
    """The patient key of one image (a patient-grouped split decides on it; a leak starts here).

    `dicom_patient`: the PatientID (with issuer) when known; None reads the header of
    files that may be DICOM, "" reads nothing (e.g. on the GUI thread).
    `labelled`: the labels.csv `patient` value, if any.
    """
    path = Path(path)
    if dicom_patient is None and path.suffix.lower() not in _RASTER_SUFFIXES:
        dicom_patient = _dicom_patient(path)
    if dicom_patient and str(dicom_patient).strip():
        return f"{DICOM}{str(dicom_patient).strip()}"
    if labelled and str(labelled).strip():
        return f"{LABELLED}{str(labelled).strip()}"
    kermany = kermany_patient(path)
    if kermany is not None:
        return kermany
    stem = path.stem if path.suffix.lower() in IMAGE_SUFFIXES else path.name
    return f"{FILE}{(path.parent / stem).as_posix()}"


def shown_patient(patient: str, folder: Path | None = None) -> str:
    """The patient as a reader sees it: no prefix, and a file-patient relative to the study
    folder (never a local path)."""
    for prefix in (DICOM, LABELLED):
        if patient.startswith(prefix):
            return patient[len(prefix):]
    if patient.startswith(FILE):
        path = Path(patient[len(FILE):])
        if folder is not None:
            try:
                return path.relative_to(folder).as_posix()
            except ValueError:
                pass
        return path.name
    return patient


def _dicom_patient(path: Path) -> str | None:
    """PatientID (with IssuerOfPatientID when present) from the header, or None."""
    ds = read_header(path)
    if ds is None:
        return None
    return dicom_patient_of({"PatientID": ds.get("PatientID", ""),
                             "IssuerOfPatientID": ds.get("IssuerOfPatientID", "")}) or None
