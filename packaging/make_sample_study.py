"""Re-make `resources/sample_study/`: the study PneumoScan opens on first launch.

Twelve real chest X-rays (6 NORMAL, 6 PNEUMONIA: 3 bacterial, 3 viral), each from
a different patient, copied from the Kermany et al. (2018) data set (CC BY 4.0),
laid out as NORMAL/ and PNEUMONIA/ sub-folders, plus a labels.csv. Two of the
twelve are stored as DICOM instead of JPEG to show (and test) the DICOM path:

* NORMAL/sample-001.dcm: 8-bit MONOCHROME2, uncompressed (Explicit VR Little Endian)
* PNEUMONIA/sample-002.dcm: 12-bit MONOCHROME1 with a window, JPEG-LS lossless

The DICOM headers are synthetic (made-up PatientID, names, dates and UIDs);
there are no real patient data in them.

Usage: python packaging/make_sample_study.py [--source DIR] [--out DIR]
"""
from __future__ import annotations

import argparse
import csv
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SOURCE = REPO.parent / "shared" / "data" / "chest_xray" / "train"
DEFAULT_OUT = REPO / "resources" / "sample_study"

# Chosen by eye: clear, typical films, one per patient. Originals are 224x224 JPEGs.
NORMAL = [
    "IM-0166-0001.jpeg",
    "IM-0646-0001.jpeg",
    "NORMAL2-IM-0589-0001.jpeg",
    "NORMAL2-IM-0669-0001.jpeg",
    "NORMAL2-IM-0911-0001.jpeg",
    "NORMAL2-IM-1109-0001.jpeg",
]
PNEUMONIA = [
    "person354_bacteria_1633.jpeg",
    "person1320_bacteria_3355.jpeg",
    "person1927_bacteria_4836.jpeg",
    "person471_virus_967.jpeg",
    "person1145_virus_1905.jpeg",
    "person1568_virus_2723.jpeg",
]
# Source JPEG -> DICOM file written in its place (same class folder).
DICOM_8BIT = ("NORMAL", "NORMAL2-IM-0669-0001.jpeg", "sample-001.dcm")
DICOM_12BIT = ("PNEUMONIA", "person1145_virus_1905.jpeg", "sample-002.dcm")


def _grey(path: Path) -> np.ndarray:
    image = cv2.imdecode(np.fromfile(str(path), dtype=np.uint8), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise SystemExit(f"cannot read {path}")
    return image


def _dataset(patient_id: str, study_date: str, instance: int, modality: str):
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import (ComputedRadiographyImageStorage, DigitalXRayImageStorageForPresentation,
                             ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID)

    # Fixed, obviously fake UIDs under pydicom's root keep re-made files byte-identical.
    root = "1.2.826.0.1.3680043.8.498.99.1"
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.SOPClassUID = (DigitalXRayImageStorageForPresentation if modality == "DX"
                      else ComputedRadiographyImageStorage)
    ds.SOPInstanceUID = f"{root}.{instance}.3"
    ds.StudyInstanceUID = f"{root}.{instance}.1"
    ds.SeriesInstanceUID = f"{root}.{instance}.2"
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.Modality = modality
    if modality == "DX":
        ds.PresentationIntentType = "FOR PRESENTATION"
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = "PA"
    ds.PatientName = "SAMPLE^ANONYMOUS"
    ds.PatientID = patient_id
    ds.StudyDate = study_date
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.ImageComments = ("PneumoScan sample study. Pixels: Kermany et al. 2018, CC BY 4.0, "
                        "doi:10.17632/rscbjbr9sj.2. Header data are synthetic.")
    return ds


def write_dicom_8bit(grey: np.ndarray, path: Path) -> None:
    ds = _dataset("SAMPLE-001", "20240115", 1, "DX")
    ds.set_pixel_data(grey.astype(np.uint8), "MONOCHROME2", 8, generate_instance_uid=False)
    ds.save_as(path, enforce_file_format=True)


def write_dicom_12bit(grey: np.ndarray, path: Path) -> None:
    """12-bit MONOCHROME1 (high = dark), JPEG-LS lossless, with a window that
    maps the used range [500, 3500] back onto the display range."""
    from pydicom.uid import JPEGLSLossless

    stored = np.rint(500 + (255 - grey.astype(np.float64)) * (3000 / 255)).astype(np.uint16)
    ds = _dataset("SAMPLE-002", "20240116", 2, "CR")
    ds.set_pixel_data(stored, "MONOCHROME1", 12, generate_instance_uid=False)
    ds.WindowCenter = 2000
    ds.WindowWidth = 3000
    ds.compress(JPEGLSLossless, encoding_plugin="pyjpegls", generate_instance_uid=False)
    ds.save_as(path, enforce_file_format=True)


def make(source: Path, out: Path) -> list[tuple[str, str]]:
    if out.exists():
        for child in ("NORMAL", "PNEUMONIA", "labels.csv"):
            target = out / child
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    rows = []
    for label, names in (("NORMAL", NORMAL), ("PNEUMONIA", PNEUMONIA)):
        folder = out / label
        folder.mkdir(parents=True, exist_ok=True)
        for name in names:
            src = source / label / name
            if (label, name) == DICOM_8BIT[:2]:
                dest = folder / DICOM_8BIT[2]
                write_dicom_8bit(_grey(src), dest)
            elif (label, name) == DICOM_12BIT[:2]:
                dest = folder / DICOM_12BIT[2]
                write_dicom_12bit(_grey(src), dest)
            else:
                dest = folder / name
                shutil.copyfile(src, dest)
            rows.append((f"{label}/{dest.name}", label))
    rows.sort()
    with open(out / "labels.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["path", "label"])
        writer.writerows(rows)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE,
                        help="chest_xray/train folder with NORMAL/ and PNEUMONIA/")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if not args.source.is_dir():
        print(f"source folder not found: {args.source}", file=sys.stderr)
        return 2
    rows = make(args.source, args.out)
    print(f"wrote {len(rows)} images and labels.csv to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
