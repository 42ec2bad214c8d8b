"""The metadata half of the scope check on films that are X-rays but not chest films (issue 19: a
dental panoramic was called "patient age 119 y" instead of "not a chest X-ray")."""
from __future__ import annotations

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from core.imaging.loader import load_image
from core.models.scope import NOT_CHEST, metadata_reason

POPULATION = {"age_years": [1, 5]}
INTRA_ORAL = "1.2.840.10008.5.1.4.1.1.1.3"
MAMMOGRAPHY = "1.2.840.10008.5.1.4.1.1.1.2"


def test_a_dental_panoramic_with_an_impossible_age_is_not_a_chest_film():
    """The reported film: DX, no body part, a birth date that makes the patient 119."""
    pano = {"Modality": "DX", "PatientBirthDate": "19000101", "StudyDate": "20190601",
            "SeriesDescription": "OPG Panoramic"}
    assert metadata_reason(pano, POPULATION) == NOT_CHEST


@pytest.mark.parametrize("meta", [
    {"Modality": "DX", "SOPClassUID": INTRA_ORAL},
    {"Modality": "DX", "SOPClassUID": MAMMOGRAPHY + ".1"},
    {"Modality": "CR", "StudyDescription": "DENTAL PANORAMIC"},
    {"Modality": "DX", "SeriesDescription": "Hand PA"},
    {"Modality": "CR", "ProtocolName": "Skull lateral"},
])
def test_non_chest_x_rays_are_named_as_such(meta):
    assert metadata_reason(meta, POPULATION) == NOT_CHEST


@pytest.mark.parametrize("meta", [
    {"Modality": "DX", "StudyDescription": "CHEST PA", "PatientAge": "003Y"},
    {"Modality": "CR", "SeriesDescription": "Thorax AP portable", "PatientAge": "002Y"},
    {"Modality": "DX", "SeriesDescription": "Chest and abdomen (babygram)", "PatientAge": "001Y"},
    {"Modality": "DX", "PatientAge": "004Y"},
])
def test_chest_films_pass(meta):
    assert metadata_reason(meta, POPULATION) == ""


def test_an_impossible_age_is_no_age_at_all():
    """119 years says the birth date is a placeholder, not that the patient is old."""
    assert metadata_reason({"Modality": "DX", "PatientBirthDate": "19000101", "StudyDate": "20190601"},
                           POPULATION) == ""
    assert metadata_reason({"Modality": "DX", "PatientAge": "054Y"}, POPULATION).startswith("patient age 54 y")


def test_the_loader_reads_what_the_rule_needs(tmp_path):
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = INTRA_ORAL
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID, ds.SOPInstanceUID = INTRA_ORAL, ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.SeriesDescription, ds.PatientID = "IO", "Bitewing", "P1"
    ds.Rows = ds.Columns = 32
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = np.arange(32 * 32, dtype=np.uint8).tobytes()
    path = tmp_path / "io.dcm"
    ds.save_as(path, enforce_file_format=True)
    meta = load_image(path).meta
    assert meta["SOPClassUID"] == INTRA_ORAL and meta["SeriesDescription"] == "Bitewing"
    assert metadata_reason(meta, POPULATION) == NOT_CHEST
