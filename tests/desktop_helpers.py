"""Shared pieces for the desktop tests: a small real study and a tiny model.

Kept small (a handful of images, a 64 px CNN) because the test machine has two
cores shared with background training.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from chest_films import films

TINY_MODEL_NAME = "desktop-test-cnn"
PATIENT_ID = "PS-TEST-0042"
STUDY_DATE = "20240131"


def source_images(label: str, count: int) -> list[Path]:
    """The first `count` real films of one class (full data or the shipped small set)."""
    return films(label, count)


def write_dicom(source: Path, target: Path) -> Path:
    """A MONOCHROME2 DICOM rendition of a JPEG, with patient and study date."""
    import cv2
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    pixels = cv2.imread(str(source), cv2.IMREAD_GRAYSCALE)
    pixels = cv2.resize(pixels, (256, 256), interpolation=cv2.INTER_AREA)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "CR"
    ds.PatientID = PATIENT_ID
    ds.StudyDate = STUDY_DATE
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    ds.save_as(target, enforce_file_format=True)
    return target


def make_study(root: Path, per_class: int = 3, dicom: bool = True, bad_file: bool = True,
               labelled: bool = True) -> Path:
    """NORMAL/ and PNEUMONIA/ sub-folders of real images (+ a DICOM and a broken file)."""
    study = root / "study"
    for label in ("NORMAL", "PNEUMONIA"):
        folder = study / label if labelled else study
        folder.mkdir(parents=True, exist_ok=True)
        for source in source_images(label, per_class):
            shutil.copy(source, folder / f"{label.lower()}-{source.name}")
    if dicom:
        target = study / "PNEUMONIA" if labelled else study
        write_dicom(source_images("PNEUMONIA", per_class + 1)[-1], target / "chest.dcm")
    if bad_file:
        target = study / "NORMAL" if labelled else study
        (target / "broken.jpeg").write_bytes(b"this is not a JPEG file")
    return study


def save_tiny_model(directory: Path, threshold: float = 0.5, version: int = 1, seed: int = 7) -> Path:
    """A 64 px custom CNN saved with its card into `directory` (once per session)."""
    from core.models.architectures import build_model
    from core.models.registry import ModelCard, save_model

    import keras
    keras.utils.set_random_seed(seed)
    model = build_model("custom_cnn", input_size=64)
    card = ModelCard(name=TINY_MODEL_NAME, architecture="custom_cnn", version=version,
                     input_size=64, threshold=threshold, notes="desktop tests: random weights")
    return save_model(model, card, directory).keras_path


def install_model(model_dir: Path, home: Path) -> None:
    """Copy the saved tiny model into a test's PNEUMOSCAN_HOME user models folder."""
    target = home / "models"
    target.mkdir(parents=True, exist_ok=True)
    for path in model_dir.iterdir():
        if path.suffix in (".keras", ".json"):
            shutil.copy2(path, target / path.name)
