"""The one door through which pixels enter PneumoScan.

`load_image` turns a JPEG, PNG, BMP, TIFF or DICOM file into a display-ready
2-D float32 array in [0, 1] (what a reader would see), or raises
`ImageLoadError` with a message a radiologist understands. No other exception
escapes and no unchecked array is returned.

Raster files are read as bytes and decoded from memory, so non-ASCII paths
work on every platform; DICOM files are parsed straight from disk (one copy of
the pixel data in memory). EXIF orientation is ignored (chest X-ray exports
rarely carry it, and the full and reduced JPEG decodes must agree). DICOM
decoding lives in `core.imaging.dicom`, folder discovery in `core.imaging.discovery` (which uses
this module; never the other way round).

16-bit PNG/TIFF: many exports put 10-, 12- or 14-bit detector data in a
16-bit container. A PNG sBIT chunk, when present, states the significant bits;
otherwise the data is scaled by the smallest 2^k - 1 (8 <= k <= 16) that is at
least its maximum (max <= 4095 reads as 12-bit, <= 1023 as 10-bit, ...), so a
12-bit image is not divided by 65535 into a near-black picture.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from core.imaging.dicom import DicomError, decode_dicom, has_dicm_magic, looks_like_raw_dicom


class ImageLoadError(Exception):
    """A file that cannot be turned into display-ready pixels."""

    def __init__(self, path, message: str):
        self.path = str(path)
        self.message = message
        super().__init__(f"{path}: {message}")


@dataclass
class LoadedImage:
    pixels: np.ndarray  # 2-D float32 in [0, 1], display-ready
    kind: str
    meta: dict = field(default_factory=dict)
    path: str = ""
    # The part of the frame the model saw, as shares (top, bottom, left, right); None: all of it.
    # Set by core.imaging.preprocessing.load_for_model when it trims blank borders.
    content_box: tuple[float, float, float, float] | None = None


IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".dcm", ".dicom"}
# Suffixes discovery skips (as "not an image") without opening; any other
# unknown suffix (or none) is opened and probed for image and DICOM content.
NON_IMAGE_SUFFIXES = {
    ".csv", ".tsv", ".txt", ".json", ".md", ".xml", ".html", ".htm", ".pdf", ".log",
    ".ini", ".yaml", ".yml", ".py", ".zip", ".gz", ".db", ".sqlite", ".keras", ".h5",
    ".npy", ".npz",
}
LABELS = ("NORMAL", "PNEUMONIA")

_SIGNATURES = (  # leading bytes -> kind
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"BM", "bmp"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"II+\x00", "tiff"),  # BigTIFF
    (b"MM\x00+", "tiff"),
)
_PNG_IEND = b"IEND\xaeB`\x82"  # IEND chunk type + its fixed CRC
# JPEG start-of-frame markers (C4 = DHT, C8 = JPG, CC = DAC are not frames).
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_REDUCED_GREY = {2: cv2.IMREAD_REDUCED_GRAYSCALE_2, 4: cv2.IMREAD_REDUCED_GRAYSCALE_4,
                 8: cv2.IMREAD_REDUCED_GRAYSCALE_8}


def load_image(path, max_side: int | None = None, frame: int | None = None) -> LoadedImage:
    """Load `path` as display-ready grey pixels, at most `max_side` on the longest side.

    `frame` (0-based) picks a frame of a multi-frame DICOM; None means the
    file's representative frame, else the first. For multi-frame files
    `meta["frame"]` (0-based) and `meta["frame_count"]` say which was loaded
    (absent: a single frame). A `max_side` below 1 or a
    negative frame is a programming error and raises ValueError.
    """
    if max_side is not None and max_side < 1:
        raise ValueError(f"max_side must be >= 1, got {max_side}")
    if frame is not None and frame < 0:
        raise ValueError(f"frame must be >= 0, got {frame}")
    try:
        path = Path(path)
        return _load(path, max_side, frame)
    except ImageLoadError:
        raise
    except MemoryError:
        raise ImageLoadError(path, "image is too large to load") from None
    except Exception as exc:  # last-resort net: the contract allows no other type
        raise ImageLoadError(path, f"image could not be read ({type(exc).__name__})") from exc


_HEAD_BYTES = 4096  # enough for every signature and the DICM magic


def _load(path: Path, max_side: int | None, frame: int | None) -> LoadedImage:
    head = _read_bytes(path, _HEAD_BYTES)
    kind = sniff_kind(head)
    if kind == "dicom":
        pixels, meta = _decode_dicom(path, head, max_side, frame)
    elif kind is not None:
        if frame:
            raise ImageLoadError(path, f"frame {frame + 1} does not exist: the file has 1 frame")
        data = head if len(head) < _HEAD_BYTES else _read_bytes(path)
        pixels, meta = _decode_raster(path, data, kind, max_side)
    else:
        raise ImageLoadError(path, "not an image file")
    pixels = _checked(path, _fit_within(pixels, max_side))
    return LoadedImage(pixels=pixels, kind=kind, meta=meta, path=str(path))


def _read_bytes(path: Path, limit: int = -1) -> bytes:
    """The file's bytes (the first `limit` when given), or a reader-facing error."""
    try:
        if not path.exists():
            raise ImageLoadError(path, "file not found")
        if path.is_dir():
            raise ImageLoadError(path, "this is a folder, not an image file")
        if not path.is_file():  # devices and pipes would never end
            raise ImageLoadError(path, "not a regular file")
        with open(path, "rb") as handle:
            data = handle.read(limit)
    except PermissionError:
        raise ImageLoadError(path, "permission denied") from None
    except OSError as exc:
        raise ImageLoadError(path, f"cannot read file ({exc.strerror or exc})") from None
    if not data:
        raise ImageLoadError(path, "empty file")
    return data


def sniff_kind(data: bytes) -> str | None:
    """The format the bytes really are, whatever the file is called.

    DICM goes first: a DICOM preamble may itself start like a TIFF
    (dual-personality files).
    """
    if has_dicm_magic(data):
        return "dicom"
    for signature, kind in _SIGNATURES:
        if data.startswith(signature):
            return kind
    return "dicom" if looks_like_raw_dicom(data) else None


def _decode_dicom(path: Path, head: bytes, max_side, frame) -> tuple[np.ndarray, dict]:
    try:
        return decode_dicom(path, has_magic=has_dicm_magic(head), max_side=max_side, frame=frame)
    except DicomError as exc:
        raise ImageLoadError(path, exc.message) from None


# --- JPEG / PNG / BMP / TIFF -------------------------------------------------

def _decode_raster(path: Path, data: bytes, kind: str, max_side: int | None):
    _check_complete(path, data, kind)
    buffer = np.frombuffer(data, dtype=np.uint8)
    header = jpeg_header(data) if kind == "jpeg" else None
    reduction = _jpeg_reduction(header, max_side)
    image = None
    if reduction > 1:  # libjpeg scales while decoding: far faster for big files
        image = _imdecode(path, kind, buffer, _REDUCED_GREY[reduction] | cv2.IMREAD_IGNORE_ORIENTATION)
    if image is None:  # UNCHANGED keeps 16-bit depth and alpha, and ignores EXIF orientation
        image = _imdecode(path, kind, buffer, cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise ImageLoadError(path, f"{kind.upper()} file is damaged or uses an unsupported variant")
    meta = _raster_meta(image, header)
    full_scale = _full_scale(image, data if kind == "png" else None)
    if full_scale is not None:
        meta["significant_bits"] = int(full_scale).bit_length()
    return _to_unit_grey(image, full_scale), meta


def _imdecode(path: Path, kind: str, buffer: np.ndarray, flags: int):
    """cv2.imdecode, whose refusals (e.g. a header claiming more pixels than OpenCV's
    CV_IO_MAX_IMAGE_PIXELS, 2^30) become a reason a reader can act on."""
    try:
        return cv2.imdecode(buffer, flags)
    except cv2.error as exc:
        if "CV_IO_MAX_IMAGE_PIXELS" in str(exc):
            raise ImageLoadError(path, f"{kind.upper()} header claims more pixels than can be decoded "
                                       f"(over {2 ** 30:,}): damaged, or not a radiograph") from None
        raise ImageLoadError(path, f"{kind.upper()} file is damaged or uses an unsupported variant") from None


def _check_complete(path: Path, data: bytes, kind: str) -> None:
    """OpenCV silently fills missing image data with grey; refuse cut-off files."""
    if kind == "jpeg" and not jpeg_is_complete(data):
        raise ImageLoadError(path, "JPEG is truncated")
    if kind == "png" and _PNG_IEND not in data[-4096:]:
        raise ImageLoadError(path, "PNG is truncated")
    if kind == "bmp" and len(data) >= 6 and int.from_bytes(data[2:6], "little") > len(data):
        raise ImageLoadError(path, "BMP is truncated")


def jpeg_is_complete(data: bytes) -> bool:
    """True when an end-of-image marker follows the last scan.

    FFD9/FFDA cannot occur inside entropy-coded data (FF is stuffed), so this
    accepts trailing zero padding or other trailing bytes, and is not fooled
    by the EOI of an embedded EXIF thumbnail (which precedes the main scan).
    """
    tail = data.rstrip(b"\x00")
    if tail.endswith(b"\xff\xd9"):
        return True
    return tail.rfind(b"\xff\xd9") > tail.rfind(b"\xff\xda") > 0


def jpeg_header(data: bytes) -> tuple[int, int, int, int] | None:
    """(height, width, components, precision) from the SOF marker, or None.

    Walks the marker segments only, never the compressed data.
    """
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:  # markers without a length
            pos += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image / start of scan before any frame
            return None
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        if marker in _JPEG_SOF and pos + 10 <= len(data):
            precision = data[pos + 4]
            height = int.from_bytes(data[pos + 5:pos + 7], "big")
            width = int.from_bytes(data[pos + 7:pos + 9], "big")
            return height, width, data[pos + 9], precision
        pos += 2 + length
    return None


def _jpeg_reduction(header, max_side: int | None) -> int:
    """Largest libjpeg scale (8, 4, 2) that still leaves >= max_side pixels."""
    if not max_side or header is None:
        return 1
    height, width, _components, precision = header
    if precision != 8 or height == 0 or width == 0:
        return 1
    longest = max(height, width)
    for reduction in (8, 4, 2):
        if math.ceil(longest / reduction) >= max_side:
            return reduction
    return 1


def _raster_meta(image: np.ndarray, header) -> dict:
    if header is not None:  # the file's own size, also when decoded reduced
        height, width, channels, bits = header
    else:
        height, width = image.shape[:2]
        channels = 1 if image.ndim == 2 else image.shape[2]
        bits = image.dtype.itemsize * 8
    return {"width": int(width), "height": int(height), "channels": int(channels),
            "bit_depth": int(bits)}


def _full_scale(image: np.ndarray, png: bytes | None) -> int | None:
    """The value that is white in a 16-bit image (see the module docstring);
    None for other depths (8-bit is 255, float keeps its own range)."""
    if image.dtype != np.uint16:
        return None
    bits = _png_significant_bits(png) if png is not None else None
    if bits is None:
        top = int(image.max()) if image.size else 0
        bits = min(16, max(8, top.bit_length()))
    return 2**bits - 1


def _png_significant_bits(data: bytes) -> int | None:
    """Bits stated by a PNG sBIT chunk (before IDAT), or None."""
    pos = 8
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        chunk = data[pos + 4:pos + 8]
        if chunk == b"IDAT":
            return None
        if chunk == b"sBIT" and length >= 1:
            stated = max(data[pos + 8:pos + 8 + min(length, 3)])  # grey, or the colour channels
            return stated if 1 <= stated <= 16 else None
        pos += 12 + length
    return None


def _to_unit_grey(image: np.ndarray, full_scale: int | None = None) -> np.ndarray:
    """Decoded OpenCV image (grey, grey+alpha, BGR or BGRA, any depth) -> grey in [0, 1]."""
    source_dtype = image.dtype
    grey = image.astype(np.float32)
    if grey.ndim == 3:
        if grey.shape[2] in (1, 2):  # grey, grey + alpha
            grey = grey[..., 0]
        else:  # alpha dropped, not blended: the X-ray is in the colour planes
            grey = cv2.cvtColor(np.ascontiguousarray(grey[..., :3]), cv2.COLOR_BGR2GRAY)
    if full_scale is not None:
        return grey / np.float32(full_scale)
    return _unit_scaled(grey, source_dtype)


def _unit_scaled(values: np.ndarray, source_dtype) -> np.ndarray:
    """Scale by the type's full range (8-bit by 255); floats outside [0, 1] by min/max."""
    if source_dtype is not None and np.issubdtype(source_dtype, np.unsignedinteger):
        return values / np.float32(np.iinfo(source_dtype).max)
    if values.size and 0.0 <= values.min() and values.max() <= 1.0:
        return values  # float images already in [0, 1]
    lo, hi = float(values.min()), float(values.max())
    return (values - lo) / (hi - lo) if hi > lo else values - lo


# --- common ------------------------------------------------------------------

def _fit_within(pixels: np.ndarray, max_side: int | None) -> np.ndarray:
    """Shrink (INTER_AREA, aspect kept) so the longest side is at most max_side."""
    if not max_side or pixels.ndim != 2 or max(pixels.shape) <= max_side:
        return pixels
    rows, cols = pixels.shape
    scale = max_side / max(rows, cols)
    size = (int(min(max_side, max(1, round(cols * scale)))),
            int(min(max_side, max(1, round(rows * scale)))))
    return cv2.resize(pixels.astype(np.float32), size, interpolation=cv2.INTER_AREA)


def _checked(path: Path, pixels: np.ndarray) -> np.ndarray:
    """The last gate: only a finite, non-empty 2-D float32 array in [0, 1] leaves."""
    pixels = np.asarray(pixels)
    if pixels.ndim != 2 or pixels.size == 0:
        raise ImageLoadError(path, "image has no usable pixels")
    pixels = pixels.astype(np.float32)
    if not np.isfinite(pixels).all():
        raise ImageLoadError(path, "image contains invalid pixel values")
    np.clip(pixels, 0.0, 1.0, out=pixels)  # rounding and out-of-range stored values
    return np.ascontiguousarray(pixels)


# --- folders -----------------------------------------------------------------

def label_from_path(path) -> str | None:
    for part in reversed(Path(path).parent.parts):
        if part.upper() in LABELS:
            return part.upper()
    return None
