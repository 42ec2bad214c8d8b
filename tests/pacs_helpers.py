"""Chest-radiograph-like DICOM files for the PACS tests (tiny, made on the fly)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

DX_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.1"
CR_IMAGE = "1.2.840.10008.5.1.4.1.1.1"


def make_dataset(study_uid: str | None = None, sop_uid: str | None = None, rows: int = 64, cols: int = 72,
                 seed: int = 0, sop_class: str = DX_FOR_PRESENTATION, pixels: np.ndarray | None = None,
                 patient: str = "Test^Patient", instance: int = 1) -> pydicom.Dataset:
    """An uncompressed 12-bit MONOCHROME2 radiograph data set with file meta."""
    if pixels is None:
        pixels = np.random.default_rng(seed).integers(0, 4096, (rows, cols), dtype=np.uint16)
    ds = pydicom.Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = sop_uid or generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientName = patient
    ds.PatientID = "PID-001"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyDate = "20260101"
    ds.StudyTime = "120000"
    ds.AccessionNumber = "ACC1"
    ds.StudyID = "1"
    ds.ReferringPhysicianName = ""
    ds.Modality = "DX" if sop_class == DX_FOR_PRESENTATION else "CR"
    ds.SeriesNumber = 1
    ds.InstanceNumber = instance
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = "PA"
    ds.PatientOrientation = ["L", "F"]
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    return ds


def write_dataset(ds: pydicom.Dataset, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def from_image(image_path: Path, study_uid: str, instance: int) -> pydicom.Dataset:
    """A real chest X-ray (JPEG/PNG) wrapped as an 8-bit DX data set."""
    import cv2

    grey = cv2.imread(str(image_path), cv2.IMREAD_GRAYSCALE)
    ds = make_dataset(study_uid=study_uid, pixels=grey.astype(np.uint16), instance=instance)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelData = grey.astype(np.uint8).tobytes()
    return ds
