"""Patient identity decides whether a validation split leaks: DICOM PatientID
first, Kermany file names next, and never a merge of unknown files."""
from __future__ import annotations

import numpy as np
import pytest

import conftest_loader_helpers as h
from core.training.dataset import Sample, grouped_split, patient_id


@pytest.fixture(scope="module")
def v() -> np.ndarray:
    return h.read_grey(h.small_source())[:32, :32]


def dicom(path, v, patient=None, issuer=None, preamble=True):
    ds = h.mono2_8bit(v)
    if patient is None:
        del ds.PatientID
    else:
        ds.PatientID = patient
    if issuer:
        ds.IssuerOfPatientID = issuer
    return h.save(ds, path, preamble=preamble)


@pytest.mark.parametrize("name, expected", [
    ("person123_bacteria_45.jpeg", "person123"),
    ("PERSON7_virus_2.jpeg", "person7"),
    ("IM-0117-0001.jpeg", "IM-0117"),
    ("NORMAL2-IM-1427-0001.jpeg", "NORMAL2-IM-1427"),
])
def test_kermany_names_carry_the_patient_across_folders(name, expected):
    assert patient_id(f"train/NORMAL/{name}") == expected
    assert patient_id(f"test/PNEUMONIA/{name}") == expected


def test_dicom_patient_id_comes_first(v, tmp_path):
    a = dicom(tmp_path / "p1" / "IM-0001.dcm", v, patient="12345")
    b = dicom(tmp_path / "p2" / "IM-0002.dcm", v, patient="12345")
    c = dicom(tmp_path / "p2" / "IM-0003.dcm", v, patient="67890")
    assert patient_id(a) == patient_id(b) == "dicom:12345"
    assert patient_id(c) == "dicom:67890"


def test_dicom_without_preamble_or_suffix_is_read_too(v, tmp_path):
    raw = dicom(tmp_path / "p1" / "00000001", v, patient="RAW-7", preamble=False)
    assert patient_id(raw) == "dicom:RAW-7"


def test_issuer_keeps_equal_ids_of_two_hospitals_apart(v, tmp_path):
    a = dicom(tmp_path / "a.dcm", v, patient="100", issuer="HOSP-A")
    b = dicom(tmp_path / "b.dcm", v, patient="100", issuer="HOSP-B")
    assert patient_id(a) != patient_id(b)


def test_same_name_in_two_patient_folders_are_two_patients(v, tmp_path):
    # No PatientID: IM-0001.dcm of p1 and of p2 must not become one patient "IM".
    a = dicom(tmp_path / "p1" / "IM-0001.dcm", v)
    b = dicom(tmp_path / "p2" / "IM-0001.dcm", v)
    c = dicom(tmp_path / "p1" / "IM-0002.dcm", v)
    assert len({patient_id(a), patient_id(b), patient_id(c)}) == 3
    assert "IM" not in {patient_id(a), patient_id(b), patient_id(c)}


def test_numbered_files_in_patient_folders(tmp_path):
    assert patient_id("p1/1.dcm") != patient_id("p2/1.dcm")
    assert patient_id("p1/1.png") != patient_id("p2/1.png")
    assert patient_id("p1/1.dcm") == "file:p1/1"  # not a DICOM file here: the file itself


def test_uid_named_files_keep_their_whole_name():
    # Only image suffixes are stripped: "1.2.840.5" and "1.2.840.6" differ.
    assert patient_id("s/1.2.840.5") != patient_id("s/1.2.840.6")


def test_split_never_puts_a_dicom_patient_on_both_sides(v, tmp_path):
    samples = []
    for patient in range(8):
        for image in range(3):
            label = "PNEUMONIA" if patient % 2 else "NORMAL"
            path = dicom(tmp_path / f"img{patient}_{image}" / "1.dcm", v, patient=f"P{patient}")
            samples.append(Sample(str(path), label, patient_id(path)))
    train, val = grouped_split(samples, val_fraction=0.25, seed=0)
    assert {s.patient for s in train}.isdisjoint({s.patient for s in val})
    assert len({s.patient for s in samples}) == 8
