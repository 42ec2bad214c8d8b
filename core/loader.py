"""The one door through which pixels enter PneumoScan.

MINIMAL FIRST VERSION (JPEG/PNG via OpenCV only); the full loader (DICOM,
LUTs, compressed syntaxes, robustness) replaces the body but keeps the API.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np


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


IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".dcm", ".dicom"}
LABELS = ("NORMAL", "PNEUMONIA")


def load_image(path, max_side: int | None = None) -> LoadedImage:
    path = Path(path)
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise ImageLoadError(path, f"cannot read file ({exc.strerror})") from None
    img = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE) if data.size else None
    if img is None:
        raise ImageLoadError(path, "not an image file")
    if max_side and max(img.shape) > max_side:
        scale = max_side / max(img.shape)
        img = cv2.resize(img, (max(1, round(img.shape[1] * scale)), max(1, round(img.shape[0] * scale))),
                         interpolation=cv2.INTER_AREA)
    kind = "png" if data[:4].tobytes() == b"\x89PNG" else "jpeg"
    return LoadedImage(pixels=img.astype(np.float32) / 255.0, kind=kind, meta={}, path=str(path))


def discover(folder) -> list[Path]:
    folder = Path(folder)
    found = [p for p in folder.rglob("*")
             if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
             and not any(part.startswith(".") for part in p.relative_to(folder).parts)]
    return sorted(found)


def label_from_path(path) -> str | None:
    for part in reversed(Path(path).parent.parts):
        if part.upper() in LABELS:
            return part.upper()
    return None
