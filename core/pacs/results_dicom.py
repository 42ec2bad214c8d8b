"""A screening result as DICOM objects a PACS stores and any viewer shows.

- `build_sr`: a Comprehensive SR (highdicom) with the call, the probability,
  the threshold, the model and its version, and the scope check, referencing
  the source image.
- `build_capture`: a secondary-capture RGB image of the source with the
  heatmap and the result burned in, marked DERIVED, for viewers without SR.

Both join the source's study (same StudyInstanceUID) in their own series with
fresh SOP Instance UIDs. The series UID is derived from (study, model, kind),
so every result of one model in one study lands in the same two series.
`read_sr` parses an SR back (tests, round trips).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.sr.coding import Code
from pydicom.uid import generate_uid

from core.screening.results import NEGATIVE, OUT_OF_SCOPE, POSITIVE, ScreenResult

MANUFACTURER = "PneumoScan"
SCHEME = "99PNEUMOSCAN"  # private coding scheme for concepts without a standard code
SR_SERIES_NUMBER = 9901
SC_SERIES_NUMBER = 9902
DISCLAIMER = "Research use only, not a medical device"
CAPTURE_MAX_SIDE = 1024  # big enough to read, small enough to send quickly

TITLE = Code("18748-4", "LN", "Diagnostic imaging report")
FINDING = Code("121071", "DCM", "Finding")
PROBABILITY = Code("PROB", SCHEME, "Probability of pneumonia")
THRESHOLD = Code("THRESH", SCHEME, "Decision threshold")
ALGORITHM_NAME = Code("111001", "DCM", "Algorithm Name")
ALGORITHM_VERSION = Code("111003", "DCM", "Algorithm Version")
MODEL_HASH = Code("MODELSHA", SCHEME, "Model SHA-256")
SCOPE = Code("SCOPE", SCHEME, "Scope check")
ERROR = Code("ERROR", SCHEME, "Not screened")
NOTE = Code("NOTE", SCHEME, "Note")
SOURCE = Code("260753009", "SCT", "Source")
NO_UNITS = Code("1", "UCUM", "no units")
IN_SCOPE_TEXT = "in scope"

_CALLS = {
    POSITIVE: Code("233604007", "SCT", "Pneumonia"),
    NEGATIVE: Code("17621005", "SCT", "Normal"),
    OUT_OF_SCOPE: Code("OOS", SCHEME, "Out of scope"),
}


@dataclass
class SrValues:
    """What an SR says (see `read_sr`)."""
    call: str | None
    probability: float | None
    threshold: float | None
    model: str
    model_version: str
    model_hash: str
    scope: str
    error: str
    source_sop_uid: str
    source_sop_class_uid: str


@dataclass
class ResultObject:
    kind: str  # "SR" or "SC"
    dataset: pydicom.Dataset
    key: str  # source SOP Instance UID | model hash | kind: one per source, model and kind


def result_objects(source_path, result: ScreenResult) -> list[ResultObject]:
    """The SR, and the secondary capture when the image could be screened, for one source file."""
    source = read_source(source_path)
    objects = [ResultObject("SR", build_sr(source, result), "")]
    if result.ok:
        objects.append(ResultObject("SC", build_capture(source, source_path, result), ""))
    for obj in objects:
        obj.key = f"{source.SOPInstanceUID}|{result.model_hash}|{obj.kind}"
    return objects


def describe(result: ScreenResult) -> str:
    """One log line: the call and probability, or why there is none."""
    if not result.ok:
        return f"not screened ({result.error})"
    scope = f", out of scope: {result.scope}" if result.scope else ""
    return f"{result.prediction} p={result.probability:.3f} (threshold {result.threshold:.3f}){scope}"


# Patient and study attributes the result objects copy; Type 2 (present, may be
# empty), so a source that lacks them still gets results.
_COPIED_TYPE2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
                 "AccessionNumber", "StudyID", "ReferringPhysicianName")


def read_source(path) -> pydicom.Dataset:
    """The source's header (no pixels): what the result objects copy and reference."""
    source = pydicom.dcmread(str(path), stop_before_pixels=True)
    for keyword in _COPIED_TYPE2:
        if keyword not in source:
            setattr(source, keyword, "")
    return source


def _series_uid(source: pydicom.Dataset, result: ScreenResult, kind: str) -> str:
    return generate_uid(entropy_srcs=[str(source.StudyInstanceUID), result.model_hash or result.model, kind])


def build_sr(source: pydicom.Dataset, result: ScreenResult) -> pydicom.Dataset:
    import highdicom as hd

    items = []
    if result.ok:
        items.append(hd.sr.CodeContentItem(FINDING, _CALLS[result.prediction], relationship_type="CONTAINS"))
        items.append(hd.sr.NumContentItem(PROBABILITY, float(result.probability), NO_UNITS,
                                          relationship_type="CONTAINS"))
    else:
        items.append(hd.sr.TextContentItem(ERROR, _clip(result.error), relationship_type="CONTAINS"))
    items += [
        hd.sr.NumContentItem(THRESHOLD, float(result.threshold), NO_UNITS, relationship_type="CONTAINS"),
        hd.sr.TextContentItem(ALGORITHM_NAME, _clip(result.model), relationship_type="CONTAINS"),
        hd.sr.TextContentItem(ALGORITHM_VERSION, _clip(str(result.model_version) or "unknown"),
                              relationship_type="CONTAINS"),
        hd.sr.TextContentItem(SCOPE, _clip(result.scope or IN_SCOPE_TEXT), relationship_type="CONTAINS"),
        hd.sr.ImageContentItem(SOURCE, source.SOPClassUID, source.SOPInstanceUID, relationship_type="CONTAINS"),
        hd.sr.TextContentItem(NOTE, DISCLAIMER, relationship_type="CONTAINS"),
    ]
    if result.model_hash:
        items.insert(-2, hd.sr.TextContentItem(MODEL_HASH, result.model_hash, relationship_type="CONTAINS"))
    root = hd.sr.ContainerContentItem(TITLE, template_id=None)
    root.ContentSequence = hd.sr.ContentSequence(items)
    sr = hd.sr.ComprehensiveSR(
        evidence=[source], content=root, series_instance_uid=_series_uid(source, result, "SR"),
        series_number=SR_SERIES_NUMBER, sop_instance_uid=generate_uid(), instance_number=_instance_number(source),
        manufacturer=MANUFACTURER, is_complete=True, is_final=False, is_verified=False)
    sr.SeriesDescription = f"PneumoScan AI result ({_clip(result.model, 40)})"
    _software_versions(sr, result)
    return sr


def _software_versions(ds: pydicom.Dataset, result: ScreenResult) -> None:
    """General Equipment's Software Versions: the PneumoScan that made the result (when recorded)."""
    if result.software_version:
        ds.SoftwareVersions = _clip(f"PneumoScan {result.software_version}", 64)


def read_sr(sr: pydicom.Dataset) -> SrValues:
    """The values of an SR made by `build_sr` (raises ValueError for another kind of SR)."""
    if not hasattr(sr, "ContentSequence"):
        raise ValueError("not a PneumoScan result SR: no content")
    by_code: dict[tuple[str, str], pydicom.Dataset] = {}
    for item in sr.ContentSequence:
        concept = item.ConceptNameCodeSequence[0]
        by_code[(concept.CodeValue, concept.CodingSchemeDesignator)] = item

    def item(code: Code):
        return by_code.get((code.value, code.scheme_designator))

    def text(code: Code) -> str:
        found = item(code)
        return str(found.TextValue) if found is not None else ""

    def number(code: Code) -> float | None:
        found = item(code)
        return None if found is None else float(found.MeasuredValueSequence[0].NumericValue)

    call = None
    finding = item(FINDING)
    if finding is not None:
        value = finding.ConceptCodeSequence[0]
        call = next((label for label, code in _CALLS.items()
                     if (code.value, code.scheme_designator) == (value.CodeValue, value.CodingSchemeDesignator)),
                    None)
    source = item(SOURCE)
    reference = source.ReferencedSOPSequence[0] if source is not None else None
    scope = text(SCOPE)
    return SrValues(
        call=call, probability=number(PROBABILITY), threshold=number(THRESHOLD), model=text(ALGORITHM_NAME),
        model_version=text(ALGORITHM_VERSION), model_hash=text(MODEL_HASH),
        scope="" if scope == IN_SCOPE_TEXT else scope, error=text(ERROR),
        source_sop_uid=str(reference.ReferencedSOPInstanceUID) if reference is not None else "",
        source_sop_class_uid=str(reference.ReferencedSOPClassUID) if reference is not None else "")


def build_capture(source: pydicom.Dataset, source_path, result: ScreenResult) -> pydicom.Dataset:
    """Secondary capture: the source (display-windowed), heatmap and result text burned in."""
    import highdicom as hd

    rgb = render_capture(source_path, result)
    sc = hd.sc.SCImage.from_ref_dataset(
        ref_dataset=source, pixel_array=rgb, photometric_interpretation="RGB", bits_allocated=8,
        coordinate_system="PATIENT", series_instance_uid=_series_uid(source, result, "SC"),
        series_number=SC_SERIES_NUMBER, sop_instance_uid=generate_uid(),
        instance_number=_instance_number(source), manufacturer=MANUFACTURER,
        patient_orientation=_patient_orientation(source), transfer_syntax_uid=pydicom.uid.ExplicitVRLittleEndian)
    sc.ImageType = ["DERIVED", "SECONDARY"]
    sc.BurnedInAnnotation = "YES"
    sc.SeriesDescription = f"PneumoScan AI heatmap ({_clip(result.model, 40)})"
    _software_versions(sc, result)
    sc.DerivationDescription = _clip(f"Grad-CAM heatmap and AI result over the source image; {DISCLAIMER}", 1024)
    reference = pydicom.Dataset()
    reference.ReferencedSOPClassUID = source.SOPClassUID
    reference.ReferencedSOPInstanceUID = source.SOPInstanceUID
    sc.SourceImageSequence = [reference]
    return sc


def render_capture(source_path, result: ScreenResult) -> np.ndarray:
    """uint8 RGB (rows, cols, 3): the image, the heatmap (if any) and the result lines."""
    import cv2

    from core.models.gradcam import overlay
    from core.imaging.loader import load_image

    pixels = load_image(Path(source_path), max_side=CAPTURE_MAX_SIDE).pixels
    if result.cam is not None:
        rgb = overlay(pixels, result.cam, 0.4)
    else:
        grey = np.round(np.clip(pixels, 0.0, 1.0) * 255.0).astype(np.uint8)
        rgb = cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB)
    return _burn_in(np.ascontiguousarray(rgb), capture_lines(result))


def _burn_in(rgb: np.ndarray, lines: list[str]) -> np.ndarray:
    """Yellow text on a dark band at the top left: readable on any image."""
    import cv2

    font, scale = cv2.FONT_HERSHEY_SIMPLEX, max(rgb.shape[1] / 1400.0, 0.3)
    thickness = max(1, round(2 * scale))
    sizes = [cv2.getTextSize(line, font, scale, thickness) for line in lines]
    line_height = max(h + base for (_, h), base in sizes) + max(2, round(8 * scale))
    margin = max(2, round(8 * scale))
    width = min(rgb.shape[1], max(w for (w, _), _ in sizes) + 2 * margin)
    height = min(rgb.shape[0], line_height * len(lines) + margin)
    band = rgb[:height, :width]
    band[:] = (band.astype(np.float32) * 0.25).astype(np.uint8)  # darken, keep a hint of the image
    y = margin
    for line, ((_, h), _) in zip(lines, sizes):
        y += line_height
        cv2.putText(rgb, line, (margin, y - (line_height - h) // 2), font, scale, (255, 255, 0), thickness,
                    cv2.LINE_AA)
    return rgb


def capture_lines(result: ScreenResult) -> list[str]:
    if not result.ok:
        call = f"AI: not screened ({_clip(result.error, 60)})"
    else:
        call = f"AI: {result.prediction}  p={result.probability:.3f}  threshold {result.threshold:.3f}"
    lines = [call, f"Model: {result.model} v{result.model_version}"]
    if result.scope:
        lines.append(f"Scope: {result.scope}")
    lines.append(f"PneumoScan - {DISCLAIMER}")
    return [_ascii(line) for line in lines]


def _instance_number(source: pydicom.Dataset) -> int:
    try:
        return max(1, int(source.get("InstanceNumber") or 1))
    except (TypeError, ValueError):
        return 1


def _patient_orientation(source: pydicom.Dataset):
    orientation = source.get("PatientOrientation")
    if orientation is not None and len(orientation) == 2 and all(orientation):
        return tuple(str(v) for v in orientation)
    return ("L", "F")  # a PA chest radiograph's usual orientation; required by the PATIENT system


def _clip(text, limit: int = 1024) -> str:
    text = str(text or "")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _ascii(text: str) -> str:
    # OpenCV's Hershey fonts draw ASCII only.
    return text.encode("ascii", "replace").decode("ascii")
