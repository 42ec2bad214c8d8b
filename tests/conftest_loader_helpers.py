"""Shared helpers for the loader tests: real source images and DICOM renditions.

Not a conftest: imported explicitly by tests/test_loader.py,
tests/test_dicom_loader.py and tests/test_cli_info.py. Every DICOM builder
takes the source grey pixels `v` (uint8) and returns a Dataset whose display
should be the same picture as `v` (same orientation and polarity).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (
    DigitalXRayImageStorageForPresentation,
    ExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    generate_uid,
)

from chest_films import DATA, FULLRES, TRAIN  # noqa: F401  (the suite's one data path)


def first_jpeg(folder: Path) -> Path:
    return sorted(folder.glob("*.jpeg"))[0]


def small_source() -> Path:
    """A 224x224 three-channel training JPEG (fast to encode in every syntax)."""
    return first_jpeg(TRAIN / "PNEUMONIA")


def large_source() -> Path:
    """A full-resolution chest X-ray (~1000-2900 px)."""
    return first_jpeg(FULLRES / "NORMAL")


def read_grey(path: Path) -> np.ndarray:
    return cv2.imdecode(np.fromfile(str(path), dtype=np.uint8), cv2.IMREAD_GRAYSCALE)


def read_bgr(path: Path) -> np.ndarray:
    return cv2.imdecode(np.fromfile(str(path), dtype=np.uint8), cv2.IMREAD_COLOR)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(np.asarray(a, np.float64).ravel(),
                             np.asarray(b, np.float64).ravel())[0, 1])


# --- DICOM data sets ---------------------------------------------------------

def new_dataset() -> Dataset:
    """A chest DX header with file meta; pixels are added by the builders."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = DigitalXRayImageStorageForPresentation
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.Modality = "DX"
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = "PA"
    ds.StudyDate = "20240131"
    ds.PatientID = "ANON-0001"
    return ds


def with_pixels(arr: np.ndarray, photometric: str, bits_stored: int, **attrs) -> Dataset:
    ds = new_dataset()
    ds.set_pixel_data(arr, photometric, bits_stored)
    for keyword, value in attrs.items():
        setattr(ds, keyword, value)
    return ds


def save(ds: Dataset, path: Path, *, preamble: bool = True, implicit: bool = False) -> Path:
    """Write `ds`; without preamble also without file meta (a bare data set)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if preamble:
        ds.save_as(path, enforce_file_format=True)
    else:
        bare = Dataset()
        bare.update(ds)  # top-level elements only: no file meta, no preamble
        bare.save_as(path, implicit_vr=implicit, little_endian=True)
    return path


def mono2_8bit(v: np.ndarray) -> Dataset:
    return with_pixels(v, "MONOCHROME2", 8)


def mono1_12bit_windowed(v: np.ndarray) -> Dataset:
    """Inverted storage (high = dark); the first of two windows covers the data."""
    stored = (4095 - v.astype(np.uint16) * 16).astype(np.uint16)
    return with_pixels(stored, "MONOCHROME1", 12,
                       WindowCenter=[2048, 300], WindowWidth=[4096, 100])


def signed_16bit_rescaled(v: np.ndarray) -> Dataset:
    """stored = 4v - 1000 (signed); slope 0.25, intercept 250 gives back v."""
    stored = (v.astype(np.int16) * 4 - 1000).astype(np.int16)
    return with_pixels(stored, "MONOCHROME2", 16, RescaleSlope=0.25, RescaleIntercept=250,
                       RescaleType="US", WindowCenter=128, WindowWidth=256)


def ten_bit_plain(v: np.ndarray) -> Dataset:
    """No window, no VOI LUT: display is the full stored range [0, 1023]."""
    return with_pixels(v.astype(np.uint16) * 4, "MONOCHROME2", 10)


def twelve_bit(v: np.ndarray) -> Dataset:
    return with_pixels(v.astype(np.uint16) * 16, "MONOCHROME2", 12)


def compressed(v: np.ndarray, syntax) -> Dataset:
    ds = twelve_bit(v)
    ds.compress(syntax)
    return ds


def multi_frame(v: np.ndarray) -> Dataset:
    """Three frames; only the first is the picture."""
    frames = np.stack([v, 255 - v, np.zeros_like(v)])
    return with_pixels(frames, "MONOCHROME2", 8)


def rgb(bgr: np.ndarray) -> Dataset:
    return with_pixels(np.ascontiguousarray(bgr[..., ::-1]), "RGB", 8)


def jpeg_baseline(v: np.ndarray, quality: int = 95) -> tuple[Dataset, np.ndarray]:
    """Encapsulated one-channel baseline JPEG; returns it and OpenCV's decode of
    the same bytes (the reference, since JPEG is lossy)."""
    ok, encoded = cv2.imencode(".jpg", v, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    ds = new_dataset()
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.Rows, ds.Columns = v.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = encapsulate([encoded.tobytes()])
    ds["PixelData"].VR = "OB"
    return ds, cv2.imdecode(encoded, cv2.IMREAD_GRAYSCALE)


def implicit_vr_bare(v: np.ndarray, path: Path) -> Path:
    """Implicit VR little endian, no preamble, no file meta, no extension."""
    return save(mono2_8bit(v), path, preamble=False, implicit=True)

