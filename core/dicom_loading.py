"""DICOM bytes -> display-ready grey pixels (first frame) plus display-safe metadata.

Used only by `core.loader`, which adds the file path to errors. The display
pipeline follows DICOM PS3.3 C.11: stored values -> Modality LUT (rescale) ->
VOI LUT or window -> [0, 1], with MONOCHROME1 inverted so bone is white.
Presentation LUT Shape is not applied: for MONOCHROME1 its INVERSE merely
restates the photometric inversion already done here.
"""
from __future__ import annotations

import io

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.pixels import apply_color_lut, apply_modality_lut, get_decoder
from pydicom.pixels.processing import apply_voi, apply_windowing
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

DICM_OFFSET = 128
DICM_MAGIC = b"DICM"

# Tag groups a DICOM data set may plausibly start with when the 128-byte
# preamble and "DICM" are missing (file meta, directory, identifying, patient,
# acquisition, relationship, image groups).
_RAW_START_GROUPS = {0x0002, 0x0004, 0x0008, 0x0010, 0x0018, 0x0020, 0x0028}

# SOP classes without pixels, by UID prefix, with the reader-facing reason.
_NON_IMAGE_SOP_CLASSES = (
    ("1.2.840.10008.5.1.4.1.1.88.", "DICOM structured report: no pixel data"),
    ("1.2.840.10008.5.1.4.1.1.11.", "DICOM presentation state: no pixel data"),
    ("1.2.840.10008.5.1.4.1.1.104.", "DICOM encapsulated document (PDF/CDA): no pixel data"),
    ("1.2.840.10008.5.1.4.1.1.9.", "DICOM waveform (ECG/audio): no pixel data"),
    ("1.2.840.10008.5.1.4.1.1.481.", "DICOM radiotherapy object: no pixel data"),
    ("1.2.840.10008.1.3.10", "DICOMDIR (media index): no pixel data"),
)

# Attributes shown to the reader; identifiers beyond PatientID are left out.
META_KEYWORDS = (
    "Modality", "BodyPartExamined", "ViewPosition", "StudyDate", "PatientID",
    "Rows", "Columns", "BitsStored", "PhotometricInterpretation", "NumberOfFrames",
) + (
    # Read by the scope check (core.scope): age against the model's population, scouts.
    "PatientAge", "PatientBirthDate", "ImageType",
)
_MAX_META_CHARS = 128


class DicomError(Exception):
    """A DICOM problem phrased for a reader; `core.loader` adds the path."""

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


def decode_dicom(data: bytes, *, has_magic: bool) -> tuple[np.ndarray, dict]:
    """Return (2-D float array in about [0, 1], meta) for the first frame.

    `has_magic` False means the bytes were only guessed to be DICOM: any
    failure to find an image then reads as "not an image file".
    """
    ds = _read_dataset(data, force=not has_magic)
    if not has_magic and not _is_plausible_image(ds):
        raise NotDicomError()
    _require_pixel_data(ds)
    transfer_syntax = _transfer_syntax(ds)
    meta = dicom_meta(ds, transfer_syntax)
    frame, photometric = _decode_first_frame(ds, transfer_syntax)
    if frame.ndim == 3:
        pixels = _colour_to_grey(frame, ds, photometric)
    else:
        pixels = _grey_to_display(frame, ds, photometric)
    return pixels, meta


def _read_dataset(data: bytes, *, force: bool) -> Dataset:
    try:
        return pydicom.dcmread(io.BytesIO(data), force=force)
    except Exception:
        if force:
            raise NotDicomError() from None
        raise DicomError("DICOM header is damaged or incomplete") from None


def _is_plausible_image(ds: Dataset) -> bool:
    """A forced read must yield real image tags, not bytes parsed as noise."""
    try:
        return "SOPClassUID" in ds or ("PixelData" in ds and int(ds.Rows) > 0
                                       and int(ds.Columns) > 0)
    except Exception:
        return False


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


def _decode_first_frame(ds: Dataset, syntax: UID) -> tuple[np.ndarray, str]:
    """Decode frame 0 only (multi-frame files can be huge); return it and its
    photometric interpretation after pydicom's YBR -> RGB conversion."""
    try:
        decoder = get_decoder(syntax)
    except (NotImplementedError, ValueError):
        raise _cannot_decode(syntax) from None
    if not decoder.is_available:
        raise _cannot_decode(syntax)
    try:
        frame, props = decoder.as_array(ds, index=0)
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


def _grey_to_display(frame: np.ndarray, ds: Dataset, photometric: str) -> np.ndarray:
    if np.issubdtype(frame.dtype, np.floating):  # Float Pixel Data: no LUTs apply
        return _min_max_scaled(frame.astype(np.float64))
    values, lo, hi = _apply_luts(frame, ds)
    if lo == hi or not np.isfinite([lo, hi]).all():  # degenerate: use the data itself
        return _min_max_scaled(np.asarray(values, dtype=np.float64))
    pixels = (np.asarray(values, dtype=np.float64) - lo) / (hi - lo)
    if photometric == "MONOCHROME1":  # low values are white: invert so bone is white
        pixels = 1.0 - pixels
    return pixels


def _apply_luts(frame: np.ndarray, ds: Dataset) -> tuple[np.ndarray, float, float]:
    """Modality LUT then VOI; returns the values and the two values that map to
    0 and 1 (`lo` > `hi` when a negative rescale slope reverses the window).

    A VOI step that pydicom rejects (bad window width, odd LUT depth) falls
    back to the next option rather than refusing an otherwise good image.
    """
    values = apply_modality_lut(frame, ds)
    for voi in (_voi_lut_sequence, _voi_window):
        try:
            result = voi(values, ds)
        except Exception:
            continue
        if result is not None:
            return result
    lo, hi = _modality_output_range(ds, values)
    return values, lo, hi


def _voi_lut_sequence(values: np.ndarray, ds: Dataset):
    seq = ds.get("VOILUTSequence")
    if not seq or seq[0].get("LUTDescriptor") is None or seq[0].get("LUTData") is None:
        return None
    entries, first_map, _bits = seq[0].LUTDescriptor
    entries = entries or 2**16
    # The LUT takes integers; clip first so pydicom's uint16 indexing cannot wrap.
    inputs = np.clip(np.rint(values), first_map, first_map + entries - 1).astype(np.int64)
    table = apply_voi(np.arange(first_map, first_map + entries, dtype=np.int64), ds, 0)
    return apply_voi(inputs, ds, 0), float(table.min()), float(table.max())


def _voi_window(values: np.ndarray, ds: Dataset):
    if ds.get("WindowCenter") is None or ds.get("WindowWidth") is None:
        return None
    out = apply_windowing(values, ds, index=0)
    # pydicom scales to a bit-depth dependent range; probing far below and
    # far above the window reads that range back without re-deriving it.
    with np.errstate(over="ignore"):
        lo, hi = apply_windowing(np.array([-1e30, 1e30]), ds, index=0)
    return out, float(lo), float(hi)


def _modality_output_range(ds: Dataset, values: np.ndarray) -> tuple[float, float]:
    """Full stored range (from Bits Stored and signedness) after the modality LUT,
    or the data's own min/max when the tags are missing or nonsensical."""
    bits = ds.get("BitsStored")
    if not isinstance(bits, int) or not 1 <= bits <= 32:
        return float(np.min(values)), float(np.max(values))
    if ds.get("PixelRepresentation", 0) == 1:
        stored = np.array([-(2 ** (bits - 1)), 2 ** (bits - 1) - 1], dtype=np.int64)
    else:
        stored = np.array([0, 2**bits - 1], dtype=np.int64)
    mapped = np.asarray(apply_modality_lut(stored, ds), dtype=np.float64)
    lo, hi = float(mapped.min()), float(mapped.max())
    if not hi > lo:
        return float(np.min(values)), float(np.max(values))
    return lo, hi


def _colour_to_grey(frame: np.ndarray, ds: Dataset, photometric: str) -> np.ndarray:
    if photometric == "PALETTE COLOR":
        frame = apply_color_lut(frame, ds)
    if frame.shape[-1] != 3:
        raise DicomError(f"DICOM colour image with {frame.shape[-1]} samples is not supported")
    rgb = _unit_scaled_colour(frame, ds, photometric)
    if photometric.startswith("YBR"):  # not converted to RGB: luma is the grey image
        return rgb[..., 0]
    return rgb @ np.array([0.299, 0.587, 0.114])


def _unit_scaled_colour(frame: np.ndarray, ds: Dataset, photometric: str) -> np.ndarray:
    if photometric == "PALETTE COLOR" and np.issubdtype(frame.dtype, np.unsignedinteger):
        return frame / float(np.iinfo(frame.dtype).max)  # LUT output: 8 or 16-bit entries
    bits = ds.get("BitsStored")
    if ds.get("PixelRepresentation", 0) == 0 and isinstance(bits, int) and 1 <= bits <= 32:
        return frame / float(2**bits - 1)
    return _min_max_scaled(frame.astype(np.float64))


def _min_max_scaled(values: np.ndarray) -> np.ndarray:
    lo, hi = float(np.min(values)), float(np.max(values))
    if not hi > lo:  # blank (or non-finite) image: the loader's checks decide
        return values - lo
    return (values - lo) / (hi - lo)


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
    frames = meta.setdefault("NumberOfFrames", 1)  # absent means a single frame
    if isinstance(frames, int) and frames > 1:
        meta["note"] = f"multi-frame image: only the first of {frames} frames is shown"
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
