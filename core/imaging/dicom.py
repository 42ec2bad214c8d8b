"""DICOM file -> display-ready grey pixels (one frame) plus display-safe metadata.

Used only by `core.imaging.loader`, which adds the file path to errors. The display
pipeline follows DICOM PS3.3 C.11: stored values -> Modality LUT (rescale or
LUT sequence) -> VOI LUT or window -> Presentation LUT -> [0, 1], bone white.

Photometric inversion and Presentation LUT Shape: MONOCHROME1 is shown
inverted, and so is a Presentation LUT Shape of INVERSE. For MONOCHROME1 an
INVERSE shape restates the same inversion (PS3.3 C.8.11.1: DX images pair
them), so it is applied once, never twice.

A reduced decode (`max_side`) shrinks the stored values first and runs the
LUT chain on the small array. Grey images are read from disk frame by frame
(header, then only the wanted frame's pixel data); other files are parsed
whole from disk, never copied into memory as bytes first.
"""
from __future__ import annotations

import io
import os

import cv2
import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.multival import MultiValue
from pydicom.pixels import get_decoder
from pydicom.pixels import pixel_array as read_pixels
from pydicom.uid import (
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
)

from core.imaging.dicom_display import colour_to_grey, grey_to_display

DICM_OFFSET = 128
DICM_MAGIC = b"DICM"

# Tag groups a DICOM data set may plausibly start with when the 128-byte
# preamble and "DICM" are missing (file meta, directory, identifying, patient,
# acquisition, relationship, image groups).
_RAW_START_GROUPS = {0x0000, 0x0002, 0x0004, 0x0008, 0x0009, 0x0010, 0x0018, 0x0020, 0x0028}
MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"  # the SOP class of a DICOMDIR

# SOP classes without pixels, by UID prefix, with the reader-facing reason.
_NON_IMAGE_SOP_CLASSES = (
    ("1.2.840.10008.5.1.4.1.1.88.", "DICOM structured report: no pixel data"),
    ("1.2.840.10008.5.1.4.1.1.11.", "DICOM presentation state: no pixel data"),
    ("1.2.840.10008.5.1.4.1.1.104.", "DICOM encapsulated document (PDF/CDA): no pixel data"),
    ("1.2.840.10008.5.1.4.1.1.9.", "DICOM waveform (ECG/audio): no pixel data"),
    ("1.2.840.10008.5.1.4.1.1.481.", "DICOM radiotherapy object: no pixel data"),
    ("1.2.840.10008.1.3.10", "DICOMDIR (media index): no pixel data"),
)

# Attributes shown to the reader; identifiers beyond PatientID are left out, except the
# study and series UIDs that group one patient's films (core.reading.session).
META_KEYWORDS = (
    "Modality", "BodyPartExamined", "ViewPosition", "StudyDate", "PatientID",
    "IssuerOfPatientID",  # with PatientID, who the patient is (core.imaging.patients)
    "Rows", "Columns", "BitsStored", "PhotometricInterpretation", "NumberOfFrames",
    "StudyInstanceUID", "SeriesInstanceUID",
    "PresentationLUTShape",
) + (
    # Read by the scope check (core.models.scope): age against the model's population, scouts,
    # storage classes and descriptions that name another examination.
    "PatientAge", "PatientBirthDate", "ImageType", "SOPClassUID", "StudyDescription", "SeriesDescription",
    "ProtocolName",
)
_MAX_META_CHARS = 128


class DicomError(Exception):
    """A DICOM problem phrased for a reader; `core.imaging.loader` adds the path."""

    def __init__(self, message: str):
        self.message = message
        super().__init__(message)


class NotDicomError(DicomError):
    """Bytes without the DICM magic that did not parse as a DICOM image either."""

    def __init__(self):
        super().__init__("not an image file")


def has_dicm_magic(head: bytes) -> bool:
    return head[DICM_OFFSET:DICM_OFFSET + 4] == DICM_MAGIC


def looks_like_raw_dicom(head: bytes) -> bool:
    """True when the first tag looks like a preamble-less DICOM data set.

    A cheap guard so that random or text files are not handed to
    `dcmread(force=True)`, which accepts almost anything.
    """
    if len(head) < 8:
        return False
    return (int.from_bytes(head[:2], "little") in _RAW_START_GROUPS
            or int.from_bytes(head[:2], "big") in _RAW_START_GROUPS)


def read_header(path) -> Dataset | None:
    """The data set of a DICOM file without its pixels, or None when `path` is
    not DICOM (with or without preamble). Cheap: stops before Pixel Data."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(DICM_OFFSET + 4)
            has_magic = has_dicm_magic(head)
            if not has_magic and not looks_like_raw_dicom(head):
                return None
            handle.seek(0)
            ds = pydicom.dcmread(handle, force=not has_magic, stop_before_pixels=True)
    except Exception:
        return None
    if not has_magic and not (_is_plausible_image(ds) or is_dicomdir(ds)):
        return None
    return ds


def is_dicomdir(ds: Dataset) -> bool:
    file_meta = getattr(ds, "file_meta", None) or Dataset()
    sop_class = str(file_meta.get("MediaStorageSOPClassUID") or ds.get("SOPClassUID") or "")
    return sop_class == MEDIA_STORAGE_DIRECTORY or "DirectoryRecordSequence" in ds


def decode_dicom(source, *, has_magic: bool, max_side: int | None = None,
                 frame: int | None = None) -> tuple[np.ndarray, dict]:
    """Return (2-D float array in about [0, 1], meta) for one frame.

    `source` is a path (read from disk) or bytes. `has_magic` False means the
    file was only guessed to be DICOM: any failure to find an image then reads
    as "not an image file". `frame` is 0-based; None means the representative
    frame when the file names one, else the first. `max_side` shrinks the
    stored values before the LUTs (a reduced decode).
    """
    if has_magic and not isinstance(source, (bytes, bytearray, memoryview)):
        streamed = _decode_streamed(source, max_side, frame)
        if streamed is not None:
            return streamed
    ds = _read_dataset(source, force=not has_magic)
    if not has_magic and not _is_plausible_image(ds):
        raise NotDicomError()
    _require_pixel_data(ds)
    transfer_syntax = _transfer_syntax(ds)
    meta = dicom_meta(ds, transfer_syntax)
    index = _frame_index(ds, meta, frame)
    stored, photometric = _decode_frame(ds, transfer_syntax, index)
    if photometric != "PALETTE COLOR":  # palette indices cannot be averaged
        stored = _shrunk(stored, max_side)
    if stored.ndim == 3:
        try:
            pixels = colour_to_grey(stored, ds, photometric)
        except ValueError as exc:
            raise DicomError(str(exc)) from None
    else:
        pixels = grey_to_display(stored, ds, photometric)
    return pixels, meta


def _decode_streamed(path, max_side: int | None, frame: int | None):
    """Grey images read lean: the header, then only the wanted frame's pixel
    data from the file (no full in-memory copy of the Pixel Data element).

    Returns None to hand over to the full read, which names any problem and
    repairs what it can (colour, palette, damaged or unusual files).
    """
    try:
        ds = pydicom.dcmread(os.fspath(path), stop_before_pixels=True)
        photometric = str(ds.get("PhotometricInterpretation", "")).strip().upper()
        if ds.get("SamplesPerPixel", 1) != 1 or photometric not in ("MONOCHROME1", "MONOCHROME2"):
            return None
        syntax = _transfer_syntax(ds)
    except Exception:
        return None
    meta = dicom_meta(ds, syntax)
    index = _frame_index(ds, meta, frame)  # a missing frame is the reader's error either way
    try:
        stored = read_pixels(os.fspath(path), index=index)
    except MemoryError:
        raise DicomError("image is too large to load") from None
    except Exception:
        return None
    if stored.ndim == 3 and stored.shape[-1] == 1:
        stored = stored[..., 0]
    if stored.ndim != 2:
        return None
    return grey_to_display(_shrunk(stored, max_side), ds, photometric), meta


def _read_dataset(source, *, force: bool) -> Dataset:
    try:
        if isinstance(source, (bytes, bytearray, memoryview)):
            return pydicom.dcmread(io.BytesIO(source), force=force)
        return pydicom.dcmread(os.fspath(source), force=force)
    except MemoryError:
        raise DicomError("image is too large to load") from None
    except Exception:
        if force:
            raise NotDicomError() from None
        raise DicomError("DICOM header is damaged or incomplete") from None


def _is_plausible_image(ds: Dataset) -> bool:
    """A forced read must yield real image tags, not bytes parsed as noise:
    a SOP Class, or an image size (older and ACR-NEMA style files without a
    SOP Class; a header read stops before Pixel Data, so its size decides)."""
    try:
        return "SOPClassUID" in ds or (int(ds.Rows) > 0 and int(ds.Columns) > 0)
    except Exception:
        return False


def _frame_index(ds: Dataset, meta: dict, frame: int | None) -> int:
    """0-based frame to decode; records `frame` and `frame_count` in meta.

    Default: Representative Frame Number (0028,6010, 1-based) when valid,
    else the first frame.
    """
    count = meta["NumberOfFrames"] if isinstance(meta.get("NumberOfFrames"), int) else 1
    count = max(count, 1)
    if frame is None:
        representative = ds.get("RepresentativeFrameNumber")
        frame = representative - 1 if isinstance(representative, int) and 1 <= representative <= count else 0
    elif not 0 <= frame < count:
        raise DicomError(f"frame {frame + 1} does not exist: the file has {count} frame(s)")
    if count > 1:  # absent means a single frame (kept out of single-frame displays)
        meta["frame_count"] = count
        meta["frame"] = int(frame)
        meta["note"] = f"multi-frame image: frame {frame + 1} of {count} is shown and screened"
    return int(frame)


def _shrunk(stored: np.ndarray, max_side: int | None) -> np.ndarray:
    """Stored values shrunk (INTER_AREA) so the longest side is at most max_side;
    integers stay integers (LUT sequences index by stored value)."""
    rows, cols = stored.shape[:2]
    if not max_side or max(rows, cols) <= max_side:
        return stored
    scale = max_side / max(rows, cols)
    size = (int(min(max_side, max(1, round(cols * scale)))),
            int(min(max_side, max(1, round(rows * scale)))))
    small = cv2.resize(stored.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    if np.issubdtype(stored.dtype, np.integer):
        info = np.iinfo(stored.dtype)
        small = np.clip(np.rint(small), info.min, info.max).astype(stored.dtype)
    return small


def _require_pixel_data(ds: Dataset) -> None:
    if any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        for keyword in ("Rows", "Columns"):
            value = ds.get(keyword)
            if not isinstance(value, int) or value <= 0:
                raise DicomError("DICOM image size (Rows/Columns) is missing or invalid")
        return
    file_meta = getattr(ds, "file_meta", None) or Dataset()
    sop_class = str(ds.get("SOPClassUID") or file_meta.get("MediaStorageSOPClassUID") or "")
    for prefix, reason in _NON_IMAGE_SOP_CLASSES:
        if sop_class.startswith(prefix):
            raise DicomError(reason)
    raise DicomError("DICOM file has no pixel data")


def _transfer_syntax(ds: Dataset) -> UID:
    """The data set's transfer syntax, inferred from its encoding when absent."""
    file_meta = getattr(ds, "file_meta", None)
    if file_meta is None:
        file_meta = ds.file_meta = FileMetaDataset()
    syntax = file_meta.get("TransferSyntaxUID")
    if syntax is None:
        implicit, little = ds.original_encoding
        if implicit:
            syntax = ImplicitVRLittleEndian
        else:
            syntax = ExplicitVRLittleEndian if little is not False else ExplicitVRBigEndian
        file_meta.TransferSyntaxUID = syntax
    return UID(str(syntax))


def _syntax_name(syntax: UID) -> str:
    return syntax.name if syntax.is_transfer_syntax else f"unknown transfer syntax {syntax}"


def _cannot_decode(syntax: UID, detail: str = "") -> DicomError:
    kind = "compressed DICOM" if _is_compressed(syntax) else "DICOM"
    return DicomError(f"{kind} in {_syntax_name(syntax)} cannot be decoded{detail}")


def _is_compressed(syntax: UID) -> bool:
    return not syntax.is_transfer_syntax or syntax.is_compressed


def _decode_frame(ds: Dataset, syntax: UID, index: int) -> tuple[np.ndarray, str]:
    """Decode one frame only (multi-frame files can be huge); return it and its
    photometric interpretation after pydicom's YBR -> RGB conversion."""
    try:
        decoder = get_decoder(syntax)
    except (NotImplementedError, ValueError):
        raise _cannot_decode(syntax) from None
    if not decoder.is_available:
        raise _cannot_decode(syntax)
    try:
        try:
            frame, props = decoder.as_array(ds, index=index)
        except MemoryError:
            raise
        except Exception:
            if not _repair_jpeg_scan_headers(ds, syntax):
                raise
            frame, props = decoder.as_array(ds, index=index)
    except MemoryError:
        raise DicomError("image is too large to load") from None
    except Exception:
        if _is_compressed(syntax):
            raise _cannot_decode(syntax, " (damaged image data)") from None
        raise DicomError("DICOM pixel data is damaged or incomplete") from None
    photometric = str(props.get("photometric_interpretation",
                                ds.get("PhotometricInterpretation", "MONOCHROME2")))
    if frame.ndim == 3 and frame.shape[-1] == 1:
        frame = frame[..., 0]
    if frame.ndim not in (2, 3):
        raise DicomError("DICOM pixel data has an unexpected layout")
    return frame, photometric.strip().upper()


def _repair_jpeg_scan_headers(ds: Dataset, syntax: UID) -> bool:
    """Fix sequential-JPEG scan headers that some encoders write wrongly.

    Sequential (non-progressive) JPEG requires Ss=0, Se=63, Ah=Al=0 in each
    start-of-scan; some 12-bit encoders write Se=0 (pydicom's JPEG-lossy.dcm
    is one), which IJG-based readers accept but libjpeg refuses. Rewrites
    those three bytes per scan; returns False when nothing could be repaired.
    """
    if syntax not in (JPEGBaseline8Bit, JPEGExtended12Bit):
        return False
    try:
        count = int(ds.get("NumberOfFrames") or 1)
        frames = [bytearray(f) for f in generate_frames(ds.PixelData, number_of_frames=count)]
    except Exception:
        return False
    changed = False
    for data in frames:
        changed |= _fix_sequential_scans(data)
    if changed:
        ds.PixelData = encapsulate([bytes(f) for f in frames])
    return changed


def _fix_sequential_scans(data: bytearray) -> bool:
    changed = False
    pos = data.find(b"\xff\xda")
    while pos >= 0 and pos + 5 <= len(data):
        components = data[pos + 4]
        spectral = pos + 5 + 2 * components  # Ss, Se, Ah/Al follow the component list
        if spectral + 3 <= len(data) and bytes(data[spectral:spectral + 3]) != b"\x00\x3f\x00":
            data[spectral:spectral + 3] = b"\x00\x3f\x00"
            changed = True
        pos = data.find(b"\xff\xda", spectral)
    return changed


def dicom_meta(ds: Dataset, syntax: UID) -> dict:
    """Display-safe, JSON-serialisable attributes (those present, plus
    TransferSyntax and NumberOfFrames)."""
    meta: dict = {}
    for keyword in META_KEYWORDS:
        try:
            value = ds.get(keyword)
        except Exception:  # a damaged element must not stop the image
            continue
        safe = _display_safe(value)
        if safe is not None:
            meta[keyword] = safe
    meta["TransferSyntax"] = _syntax_name(syntax)
    meta.setdefault("NumberOfFrames", 1)  # absent means a single frame
    return meta


def _display_safe(value):
    """Numbers stay numbers; everything else becomes short printable text."""
    if value is None or isinstance(value, (bytes, bytearray)):
        return None
    if isinstance(value, int):  # includes pydicom's IS
        return int(value)
    if isinstance(value, MultiValue):
        text = "\\".join(str(v) for v in value)
    else:
        text = str(value)
    text = "".join(ch if ch.isprintable() else " " for ch in text).strip()
    return text[:_MAX_META_CHARS] or None
