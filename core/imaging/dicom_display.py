"""DICOM stored values to display values in [0, 1], bone white: Modality LUT (rescale or LUT
sequence) -> VOI LUT or window -> Presentation LUT, and colour to grey. Used by core.imaging.dicom
after a frame is decoded."""
from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.pixels import apply_color_lut, apply_modality_lut
from pydicom.pixels.processing import apply_voi, apply_windowing


def grey_to_display(frame: np.ndarray, ds: Dataset, photometric: str) -> np.ndarray:
    if np.issubdtype(frame.dtype, np.floating):  # Float Pixel Data: no LUTs apply
        return _min_max_scaled(frame.astype(np.float64))
    values, lo, hi = _apply_luts(frame, ds)
    if lo == hi or not np.isfinite([lo, hi]).all():  # degenerate: use the data itself
        pixels = _min_max_scaled(np.asarray(values, dtype=np.float64))
    else:
        pixels = (np.asarray(values, dtype=np.float64) - lo) / (hi - lo)
    return _presentation(pixels, ds, photometric)


def _presentation(pixels: np.ndarray, ds: Dataset, photometric: str) -> np.ndarray:
    """VOI output in [0, 1] -> P-values in [0, 1] (0 black), bone white.

    pydicom's `apply_presentation_lut` rescales by the image's own min/max;
    here the LUT's input range is the VOI output range (PS3.3 C.11.6), so a
    dark image stays dark. Out-of-range values are clipped by the loader's
    last gate (inverting first gives the same result).
    """
    table = _presentation_lut_table(ds)
    if table is not None:
        index = np.rint(np.clip(pixels, 0.0, 1.0) * (len(table) - 1)).astype(np.int64)
        pixels = table[index]
        already_inverted = table[-1] < table[0]
        return 1.0 - pixels if photometric == "MONOCHROME1" and not already_inverted else pixels
    shape = str(ds.get("PresentationLUTShape", "") or "").strip().upper()
    if photometric == "MONOCHROME1" or shape == "INVERSE":
        return 1.0 - pixels
    return pixels


def _presentation_lut_table(ds: Dataset) -> np.ndarray | None:
    """The Presentation LUT Sequence as a float table in [0, 1], or None."""
    try:
        item = ds.PresentationLUTSequence[0]
        entries, _first, bits = (int(v) for v in item.LUTDescriptor)
        entries = entries or 2**16
        element = item["LUTData"]
        if element.VR == "US" or not isinstance(element.value, (bytes, bytearray)):
            table = np.asarray(element.value, dtype=np.float64).ravel()
        else:
            dtype = "<u1" if bits <= 8 else "<u2"
            table = np.frombuffer(element.value, dtype=dtype).astype(np.float64)
        table = table[:entries]
        if table.size < 2 or not 1 <= bits <= 16:
            return None
        return np.clip(table / float(2**bits - 1), 0.0, 1.0)
    except Exception:  # absent or malformed: the shape (or nothing) applies
        return None


def _apply_luts(frame: np.ndarray, ds: Dataset) -> tuple[np.ndarray, float, float]:
    """Modality LUT then VOI; returns the values and the two values that map to
    0 and 1 (`lo` > `hi` when a negative rescale slope reverses the window).

    A VOI step that pydicom rejects (bad window width, odd LUT depth) falls
    back to the next option rather than refusing an otherwise good image.
    """
    values = _modality(frame, ds)
    for voi in (_voi_lut_sequence, _voi_window):
        try:
            result = voi(values, ds)
        except Exception:
            continue
        if result is not None:
            return result
    lo, hi = _modality_output_range(ds, values)
    return values, lo, hi


def _modality(frame: np.ndarray, ds: Dataset) -> np.ndarray:
    """Modality LUT (rescale or LUT sequence). pydicom refuses LUT sequences
    with a non-standard entry size (e.g. 12 bits; the standard says 8 or 16),
    which vendors do write: those are looked up here directly."""
    try:
        return apply_modality_lut(frame, ds)
    except Exception:
        table = _modality_lut_table(ds)
        if table is None:
            raise
    _entries, first_map, _bits = ds.ModalityLUTSequence[0].LUTDescriptor
    index = np.clip(frame.astype(np.int64) - int(first_map), 0, len(table) - 1)
    return table[index]


def _modality_lut_table(ds: Dataset) -> np.ndarray | None:
    try:
        item = ds.ModalityLUTSequence[0]
        entries = int(item.LUTDescriptor[0]) or 2**16
        value = item.LUTData
        if isinstance(value, (bytes, bytearray)):
            table = np.frombuffer(value, dtype="<u2")
        else:
            table = np.asarray(value if isinstance(value, (list, MultiValue)) else [value])
        table = table.astype(np.float64)[:entries]
        return table if table.size else None
    except Exception:
        return None


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
    mapped = np.asarray(_modality(stored, ds), dtype=np.float64)
    lo, hi = float(mapped.min()), float(mapped.max())
    if not hi > lo:
        return float(np.min(values)), float(np.max(values))
    return lo, hi


def colour_to_grey(frame: np.ndarray, ds: Dataset, photometric: str) -> np.ndarray:
    """Grey display values of a colour frame; ValueError when it has other than 3 samples."""
    if photometric == "PALETTE COLOR":
        frame = apply_color_lut(frame, ds)
    if frame.shape[-1] != 3:
        raise ValueError(f"DICOM colour image with {frame.shape[-1]} samples is not supported")
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
