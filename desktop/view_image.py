"""What the viewer shows, prepared off the GUI thread: the file's pixels quantised for a
window look-up, its own value scale, window presets, and the Grad-CAM overlay as RGBA.

Heatmaps are drawn as they are (an absolute [0, 1] scale from core.models.gradcam),
never re-scaled to each map's own maximum.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PySide6.QtGui import QImage

from desktop.workers import grey_to_qimage

VIEW_MAX_SIDE = 2048  # display copy; enough for a full-screen read
LEVELS = 4096  # float pixels are quantised to 12 bits for the window look-up
_ZOOM_PER_DEGREE = 1.015  # one wheel notch (15 degrees) zooms about 1.25x
_WL_PER_PIXEL = 1.0 / 400.0
_CACHE_IMAGES = 8  # display copies kept (2048 px uint16: 8 MB each)
NORMAL_HEATMAP_FACTOR = 0.5  # an AI-normal image's overlay, when shown, is this much fainter

# Window presets. Radiographs have no absolute scale (unlike CT's Hounsfield
# units), so each preset is a range of the image's own value distribution
# (percentiles), shown to the reader in the file's own values.
WL_PRESETS = {
    "File default": None,  # the file's own window (DICOM VOI) or the full range
    "Auto": (1.0, 99.0),
    "Lung": (2.0, 70.0),
    "Soft tissue": (20.0, 95.0),
    "Bone": (55.0, 99.8),
}


@dataclass
class ViewImage:
    """What the viewer needs for one file, prepared off the GUI thread."""
    key: str
    levels: np.ndarray  # uint16 (rows, cols) in [0, LEVELS)
    image: QImage  # grey, default window
    heatmap: QImage | None  # RGBA, Grad-CAM colour-mapped, alpha = evidence
    kind: str = ""
    value_range: tuple[float, float] = (0.0, 1.0)  # the file's values at pixel 0 and 1

    def to_file_value(self, fraction: float) -> float:
        lo, hi = self.value_range
        return lo + fraction * (hi - lo)


def file_value_range(kind: str, meta: dict) -> tuple[float, float]:
    """The file's own value scale that the loader mapped onto [0, 1]: stored bits for DICOM
    (BitsStored; after a VOI window in the file these are VOI output values), the significant
    bits or bit depth for JPEG/PNG (0-255, 0-4095 for 12-bit data in a 16-bit PNG, 0-65535)."""
    meta = meta or {}
    bits = meta.get("BitsStored") if kind == "dicom" else (meta.get("significant_bits") or meta.get("bit_depth"))
    try:
        bits = int(bits)
    except (TypeError, ValueError):
        bits = 8
    bits = min(max(bits, 1), 32)
    return 0.0, float(2 ** bits - 1)


def preset_window(levels: np.ndarray, name: str) -> tuple[float, float]:
    """(centre, width) in [0, 1] of a preset on this image's values."""
    bounds = WL_PRESETS.get(name)
    if bounds is None:
        return 0.5, 1.0
    sample = levels[::4, ::4] if levels.size > 250_000 else levels
    lo, hi = np.percentile(sample, bounds) / (LEVELS - 1)
    width = max(float(hi - lo), 1.0 / 256)
    return float(lo + hi) / 2, width


def heatmap_rgba(cam: np.ndarray, shape) -> QImage:
    """Grad-CAM grid -> RGBA image at `shape`; cold regions stay transparent."""
    import cv2

    from core.models.gradcam import upsample

    heat = upsample(cam, shape)
    heat8 = np.round(heat * 255.0).astype(np.uint8)
    rgb = cv2.cvtColor(cv2.applyColorMap(heat8, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    rgba = np.ascontiguousarray(np.dstack([rgb, heat8]))
    rows, cols = heat8.shape
    return QImage(rgba.data, cols, rows, cols * 4, QImage.Format.Format_RGBA8888).copy()


def load_view_image(key: str, cam: np.ndarray | None) -> ViewImage:
    """File + Grad-CAM -> ViewImage (file work: call on a worker thread)."""
    from core.imaging.loader import load_image

    loaded = load_image(key, max_side=VIEW_MAX_SIDE)
    levels = np.round(np.clip(loaded.pixels, 0.0, 1.0) * (LEVELS - 1)).astype(np.uint16)
    heat = heatmap_rgba(cam, levels.shape) if cam is not None else None
    return ViewImage(key=key, levels=levels, image=grey_to_qimage(loaded.pixels),
                     heatmap=heat, kind=loaded.kind, value_range=file_value_range(loaded.kind, loaded.meta))


def window_lut(center: float, width: float, invert: bool = False) -> np.ndarray:
    """LEVELS-entry look-up table for a window on [0, 1] pixel values."""
    values = np.linspace(0.0, 1.0, LEVELS, dtype=np.float32)
    width = max(width, 1.0 / LEVELS)
    lut = np.round(np.clip((values - (center - width / 2)) / width, 0.0, 1.0) * 255.0).astype(np.uint8)
    return 255 - lut if invert else lut
