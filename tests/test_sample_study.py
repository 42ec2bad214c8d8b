"""The sample study shipped in resources/sample_study (first-run experience)."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from core.imaging.discovery import discover
from core.imaging.loader import label_from_path, load_image
from core.paths import sample_study_dir

STUDY = sample_study_dir()
DICOMS = {"NORMAL/sample-001.dcm", "PNEUMONIA/sample-002.dcm"}


def _relative_images() -> list[str]:
    return sorted(p.relative_to(STUDY).as_posix() for p in discover(STUDY))


def _labels_csv() -> dict[str, str]:
    with open(STUDY / "labels.csv", newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == ["path", "label"]
        rows = list(reader)
    paths = [row["path"] for row in rows]
    assert len(paths) == len(set(paths)), "labels.csv lists an image twice"
    return {row["path"]: row["label"] for row in rows}


def test_sample_study_is_where_the_app_looks():
    assert STUDY.is_dir(), f"sample study missing at {STUDY}"
    assert (STUDY / "README.md").is_file()
    assert (STUDY / "labels.csv").is_file()


def test_every_file_is_an_image_or_documented():
    files = sorted(p.relative_to(STUDY).as_posix() for p in STUDY.rglob("*") if p.is_file())
    assert set(files) - set(_relative_images()) == {"README.md", "labels.csv"}


@pytest.mark.parametrize("rel", _relative_images())
def test_every_image_loads(rel):
    image = load_image(STUDY / rel)
    assert image.pixels.ndim == 2 and image.pixels.dtype == np.float32
    assert min(image.pixels.shape) >= 128
    assert 0.0 <= float(image.pixels.min()) and float(image.pixels.max()) <= 1.0
    assert float(image.pixels.std()) > 0.05, "a blank or washed-out picture"


def test_both_classes_and_a_dozen_images():
    labels = [label_from_path(STUDY / rel) for rel in _relative_images()]
    assert labels.count("NORMAL") == 6
    assert labels.count("PNEUMONIA") == 6


def test_pneumonia_includes_bacterial_and_viral():
    names = [Path(rel).name for rel in _relative_images() if rel.startswith("PNEUMONIA/")]
    assert any("bacteria" in n for n in names)
    assert any("virus" in n for n in names)


def test_labels_csv_matches_the_folders():
    truth = _labels_csv()
    assert sorted(truth) == _relative_images()
    for rel, label in truth.items():
        assert label == rel.split("/")[0] == label_from_path(STUDY / rel)


def test_one_patient_per_image():
    """File names carry the source patient (IM-xxxx / personN); no patient twice."""
    import re

    patients = []
    for rel in _relative_images():
        name = Path(rel).name
        match = re.search(r"(IM-\d+)|(person\d+)|(sample-\d+)", name)
        assert match, name
        patients.append(match.group(0))
    assert len(patients) == len(set(patients))


def test_the_two_dicoms():
    import pydicom
    from pydicom.uid import ExplicitVRLittleEndian

    assert DICOMS <= set(_relative_images())
    plain = pydicom.dcmread(STUDY / "NORMAL/sample-001.dcm")
    assert plain.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert (plain.PhotometricInterpretation, plain.BitsStored) == ("MONOCHROME2", 8)
    packed = pydicom.dcmread(STUDY / "PNEUMONIA/sample-002.dcm")
    assert packed.file_meta.TransferSyntaxUID.is_compressed
    assert (packed.PhotometricInterpretation, packed.BitsStored) == ("MONOCHROME1", 12)
    assert packed.get("WindowCenter") is not None and packed.get("WindowWidth") is not None
    for ds, patient in ((plain, "SAMPLE-001"), (packed, "SAMPLE-002")):
        assert ds.Modality in ("DX", "CR")
        assert (ds.BodyPartExamined, ds.ViewPosition) == ("CHEST", "PA")
        assert ds.PatientID == patient
        assert ds.StudyDate


def test_dicoms_look_like_their_source_jpegs(train_dir):
    """Both renditions display like the JPEGs they were made from (bone white).
    The small shipped set holds both sources, so this runs on a bare clone too."""
    import cv2

    pairs = {"NORMAL/sample-001.dcm": "NORMAL/NORMAL2-IM-0669-0001.jpeg",
             "PNEUMONIA/sample-002.dcm": "PNEUMONIA/person1145_virus_1905.jpeg"}
    for dicom, jpeg in pairs.items():
        shown = load_image(STUDY / dicom).pixels
        original = cv2.imread(str(train_dir / jpeg), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255
        assert shown.shape == original.shape
        assert float(np.abs(shown - original).max()) < 0.01, dicom
