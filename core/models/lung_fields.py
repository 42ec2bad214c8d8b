"""A rough estimate of the lung fields of a frontal chest X-ray, from the image alone.

Used to audit heatmaps (bench/heatmaps.py: how much heat falls outside the
lungs), never to decide a call. The method, on the image brought to 128 px,
stretched to its 1st..99th percentiles and smoothed (Gaussian, sigma 2 px):

1. the mediastinum is the brightest column of the central third (column means
   over the middle half of the rows); it splits the two sides;
2. lung candidates are the darker pixels: below the 40th percentile of the
   central part of the image (lungs fill about half of it);
3. the air around the patient is removed first: very dark regions (below the
   12th percentile of the image) touching the left or right edge, widened by
   4 px; a 5 % strip along the edges and the mediastinum column are cleared too;
4. after an opening (5 px) that cuts thin bridges, each side keeps its largest
   region that reaches the middle rows (1 % to 60 % of that side), closed
   (9 px) and with its holes filled (its centre must lie in the middle rows,
   30-80 % of the height, and off the outer 12 % of the width: not a shoulder
   or the air beside it); the result is widened by 3 px (a margin
   for the pleura and the coarse heat grid);
5. when this finds under 5 % or over 45 % of the image (a white-out, an
   over-exposed or unusually framed film), a fixed anatomical prior stands in:
   two upright ellipses centred at 30 % and 70 % of the width and 48 % of the
   height, with semi-axes of 17 % of the width and 30 % of the height (`PRIOR`).

Deliberately simple: dense (consolidated) lung brighter than the threshold is
kept only when hole filling or closing reaches it, so heat on a white lobe can
be counted as "outside"; the bench reports how often the prior stood in.
"""
from __future__ import annotations

import cv2
import numpy as np

WORK_SIZE = 128
MIN_REGION = 0.01  # of the image
MIN_TOTAL = 0.05
MIN_CONTRAST = 0.02  # 1st..99th percentile range below which a film has nothing to find
MAX_TOTAL = 0.45
PRIOR = ((0.30, 0.48, 0.17, 0.30), (0.70, 0.48, 0.17, 0.30))  # (cx, cy, rx, ry) as fractions


def prior_mask(shape) -> np.ndarray:
    rows, cols = int(shape[0]), int(shape[1])
    mask = np.zeros((rows, cols), np.uint8)
    for cx, cy, rx, ry in PRIOR:
        cv2.ellipse(mask, (round(cx * cols), round(cy * rows)), (round(rx * cols), round(ry * rows)),
                    0, 0, 360, 1, -1)
    return mask.astype(bool)


def _stretched(image: np.ndarray) -> np.ndarray | None:
    """128 px, 1st..99th percentiles to 0..1, smoothed; None for a film without contrast."""
    x = np.asarray(image, dtype=np.float32)
    if x.ndim == 3:
        x = x[..., 0]
    if x.max() > 1.0:  # uint8-scaled input
        x = x / 255.0
    x = cv2.resize(x, (WORK_SIZE, WORK_SIZE), interpolation=cv2.INTER_AREA)
    lo, hi = np.percentile(x, (1, 99))
    if hi - lo < MIN_CONTRAST:
        return None
    x = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return cv2.GaussianBlur(x, (0, 0), 2.0)


def _disk(size: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))


def _outer_air(x: np.ndarray, level: float) -> np.ndarray:
    """Very dark regions touching the left or right edge: the air around the patient."""
    air = (x < level).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(air, connectivity=4)
    outer = np.zeros_like(air)
    for index in range(1, count):
        left, _top, width, _height, _area = stats[index]
        if left == 0 or left + width >= x.shape[1]:
            outer[labels == index] = 1
    return cv2.dilate(outer, _disk(9)).astype(bool)


def _largest_side_region(dark: np.ndarray, lo: int, hi: int) -> np.ndarray | None:
    n = dark.shape[0]
    count, labels, stats, centroids = cv2.connectedComponentsWithStats(dark, connectivity=4)
    best = None
    for index in range(1, count):
        _left, top, _width, height, area = stats[index]
        plausible = (lo <= centroids[index][0] < hi and MIN_REGION * n * n <= area <= 0.6 * (hi - lo) * n
                     and top < 0.6 * n and top + height > 0.35 * n
                     and 0.3 * n <= centroids[index][1] <= 0.8 * n and 0.12 * n <= centroids[index][0] <= 0.88 * n)
        if plausible and (best is None or area > best[0]):
            best = (area, index)
    if best is None:
        return None
    region = cv2.morphologyEx((labels == best[1]).astype(np.uint8), cv2.MORPH_CLOSE, _disk(9))
    contours, _ = cv2.findContours(region, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    filled = np.zeros_like(region)
    cv2.drawContours(filled, contours, -1, 1, -1)
    return filled


def estimate_lung_fields(image: np.ndarray) -> tuple[np.ndarray, bool]:
    """(mask at the image's own shape, bool: True when the anatomical prior stood in)."""
    rows, cols = np.asarray(image).shape[:2]
    x = _stretched(image)
    if x is None:
        return prior_mask((rows, cols)), True
    n = WORK_SIZE
    profile = x[n // 4:3 * n // 4].mean(axis=0)
    third = n // 3
    mediastinum = third + int(np.argmax(profile[third:n - third]))
    level = np.percentile(x[n // 5:-n // 5, n // 10:-n // 10], 40)
    dark = (x < level).astype(np.uint8)
    dark[_outer_air(x, min(0.75 * level, np.percentile(x, 12)))] = 0
    edge = int(0.05 * n)
    dark[:, :edge] = 0
    dark[:, -edge:] = 0
    dark[:edge // 2 + 1] = 0
    dark[-edge:] = 0
    dark[:, mediastinum - 2:mediastinum + 3] = 0
    dark = cv2.morphologyEx(dark, cv2.MORPH_OPEN, _disk(5))
    mask = np.zeros((n, n), np.uint8)
    for lo, hi in ((0, mediastinum), (mediastinum, n)):
        region = _largest_side_region(dark, lo, hi)
        if region is not None:
            mask |= region
    mask = cv2.dilate(mask, _disk(7))
    if not MIN_TOTAL <= mask.mean() <= MAX_TOTAL:
        return prior_mask((rows, cols)), True
    full = cv2.resize(mask, (cols, rows), interpolation=cv2.INTER_NEAREST)
    return full.astype(bool), False


def heat_outside(heat: np.ndarray, mask: np.ndarray) -> tuple[float | None, bool | None]:
    """(share of the map's heat outside `mask`, whether its peak lies outside), the map
    brought to the mask's shape; (None, None) for an empty map."""
    from core.models.gradcam import upsample

    heat = upsample(heat, mask.shape) if heat.shape != mask.shape else np.asarray(heat, np.float32)
    total = float(heat.sum())
    if total <= 0:
        return None, None
    outside = float(heat[~mask].sum()) / total
    peak = np.unravel_index(int(np.argmax(heat)), heat.shape)
    return outside, not bool(mask[peak])


THORAX_MARGIN = 0.04  # of the image, added on each side of the lung fields' box


def thorax_box(image: np.ndarray) -> tuple[int, int, int, int]:
    """(top, bottom, left, right): the estimated lung fields widened by THORAX_MARGIN and made
    symmetric about the image's centre column; the whole image when only the prior was found.

    The estimate misses a consolidated lung (dense lung is as bright as soft tissue): on a
    pneumonia film it may find one side only, and a crop to that side would cut away the
    very finding. Mirroring keeps both sides; a crop from a guess could cut anatomy, so the
    prior crops nothing."""
    mask, used_prior = estimate_lung_fields(image)
    rows, cols = mask.shape
    if used_prior:
        return 0, rows, 0, cols
    ys, xs = np.nonzero(mask)
    dy, dx = round(THORAX_MARGIN * rows), round(THORAX_MARGIN * cols)
    left, right = int(xs.min()), int(xs.max()) + 1
    left, right = min(left, cols - right), max(right, cols - left)
    return (max(0, int(ys.min()) - dy), min(rows, int(ys.max()) + 1 + dy),
            max(0, left - dx), min(cols, right + dx))


def crop_to_thorax(image: np.ndarray, size: int) -> np.ndarray:
    """The thorax of `image` (rows x cols [x 1]) stretched to size x size (as every film is
    to the model's square input), same dtype and channels."""
    top, bottom, left, right = thorax_box(image)
    crop = cv2.resize(np.ascontiguousarray(image[top:bottom, left:right]), (size, size),
                      interpolation=cv2.INTER_AREA)
    return crop.reshape((size, size) + tuple(np.asarray(image).shape[2:]))
