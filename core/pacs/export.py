"""Result objects (SR + secondary capture) for a whole study: to a folder or straight to a node.

Used by `pneumoscan-cli export-dicom` and the desktop's "Export DICOM" /
"Send results to PACS". Stored results are reused; images without one are
screened first (and stored). Only DICOM sources can have DICOM results (the
objects join the source's study), so other files are reported and skipped.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pydicom

from core.files import write_atomically
from core.pacs.results_dicom import ResultObject, read_source, result_objects


@dataclass
class StudyExport:
    objects: list[tuple[Path, ResultObject]] = field(default_factory=list)  # (source, object)
    skipped: list[tuple[Path, str]] = field(default_factory=list)  # (file, why)


def dicom_sources(folder) -> tuple[list[Path], list[tuple[Path, str]]]:
    """DICOM files below a folder (any name), and the other image files with why they are skipped."""
    from core.imaging.discovery import discover

    sources, skipped = [], []
    for path in discover(Path(folder)):
        try:
            ds = read_source(path)
            ds.StudyInstanceUID, ds.SOPInstanceUID, ds.SOPClassUID  # noqa: B018 (all three required)
        except (pydicom.errors.InvalidDicomError, AttributeError, OSError, ValueError):
            skipped.append((path, "not a DICOM image with study and instance UIDs"))
            continue
        sources.append(path)
    return sources, skipped


def build_study_results(folder, adapter, store) -> StudyExport:
    """SR + secondary capture for each DICOM image of a study folder (screening those without a result)."""
    sources, skipped = dicom_sources(folder)
    export = StudyExport(skipped=list(skipped))
    for path in sources:
        result = store.get_result(path, adapter.model_hash)
        if result is None or (result.ok and result.cam is None and adapter.screener.gradcam):
            result = adapter.screen(path)
            store.put_result(Path(folder), result)
        export.objects += [(path, obj) for obj in result_objects(path, result)]
    return export


def write_objects(export: StudyExport, out_dir) -> list[Path]:
    """OUT/<StudyInstanceUID>/<kind>_<SOPInstanceUID>.dcm, each written atomically."""
    written = []
    for _, obj in export.objects:
        ds = obj.dataset
        # UIDs were made by us or checked by highdicom; the name still goes through the same check.
        from core.pacs.nodes import check_uid

        folder = Path(out_dir) / check_uid(ds.StudyInstanceUID)
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{obj.kind}_{check_uid(ds.SOPInstanceUID)}.dcm"
        write_atomically(target, lambda out, ds=ds: ds.save_as(out, enforce_file_format=True), ".export-")
        written.append(target)
    return written


def send_study_results(export: StudyExport, node, calling_ae_title: str) -> tuple[int, list[str]]:
    """Send the objects straight to a node: (how many were stored, error messages).

    Raises core.pacs.sender.SendError when the node cannot be reached at all.
    """
    from core.pacs.sender import send_files

    with tempfile.TemporaryDirectory(prefix="pneumoscan-send-") as temp:
        outcome = send_files(node, calling_ae_title, write_objects(export, temp))
    failed = [error for error in outcome.values() if error]
    return len(outcome) - len(failed), failed
