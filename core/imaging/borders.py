"""Blank borders around a film: the frame of one colour that some exports, scanners and
screenshots add, and on some films a band of air beside the patient so dark that whole
lines are black. The model input is the film inside them (core.imaging.preprocessing).

Why: squashed to the model's square input, a border shrinks the chest and shifts it; a
black frame 5 % wide made the default model call 44 % of normal site films pneumonia
(README, "Scope check"). Trimmed, the film reaches the model as the training films did.

A line (row or column) is blank when the spread of its values (2nd to 98th percentile,
so JPEG noise and a stray mark do not count) is within BLANK_SPREAD. Only runs of blank
lines that touch an edge are trimmed, at most MAX_SIDE_SHARE of the image from any side,
and nothing at all where less than MIN_KEPT_SHARE of either axis would be left: an
image that is mostly blank is left whole for the scope check to judge.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BLANK_SPREAD = 0.04  # on the loader's [0, 1] scale: about 10 grey levels of 255
MAX_SIDE_SHARE = 0.3
MIN_KEPT_SHARE = 0.5


@dataclass(frozen=True)
class ContentBox:
    """The film inside its blank borders, in pixels of the image it was found on
    (bottom and right exclusive)."""
    top: int
    bottom: int
    left: int
    right: int
    rows: int
    cols: int

    @property
    def is_whole(self) -> bool:
        return (self.top, self.bottom, self.left, self.right) == (0, self.rows, 0, self.cols)

    def crop(self, pixels: np.ndarray) -> np.ndarray:
        return pixels[self.top:self.bottom, self.left:self.right]

    def fractions(self) -> tuple[float, float, float, float]:
        """(top, bottom, left, right) as shares of the image: the same box at any resolution."""
        return (self.top / self.rows, self.bottom / self.rows, self.left / self.cols, self.right / self.cols)


_CHUNK = 16  # lines judged at a time: most films have content on their first line


def _blank_run(lines: np.ndarray, limit: int) -> int:
    """How many of `lines` (2-D, one line a row, starting at the edge) are blank, at most `limit`.

    Judged a chunk at a time from the edge, so a film without borders costs one chunk a side.
    """
    for start in range(0, limit, _CHUNK):
        chunk = lines[start:min(start + _CHUNK, limit)]
        lo, hi = np.percentile(chunk, [2, 98], axis=1)
        content = np.flatnonzero(hi - lo > BLANK_SPREAD)
        if content.size:
            return start + int(content[0])
    return limit


def find_content_box(pixels: np.ndarray) -> ContentBox:
    """The box inside `pixels`' (2-D, [0, 1]) blank borders; the whole image when it has none."""
    if pixels.ndim != 2:
        raise ValueError(f"expected a 2-D grey image, got shape {pixels.shape}")
    rows, cols = pixels.shape
    whole = ContentBox(0, rows, 0, cols, rows, cols)
    if rows < 4 or cols < 4:
        return whole
    max_rows, max_cols = int(rows * MAX_SIDE_SHARE), int(cols * MAX_SIDE_SHARE)
    top = _blank_run(pixels, max_rows)
    bottom = rows - _blank_run(pixels[::-1], max_rows)
    # columns judged between the row borders, so a top band of another colour does not hide them
    inner = pixels[top:max(bottom, top + 1)]
    left = _blank_run(inner.T, max_cols)
    right = cols - _blank_run(inner.T[::-1], max_cols)
    if bottom - top < rows * MIN_KEPT_SHARE or right - left < cols * MIN_KEPT_SHARE:
        return whole
    return ContentBox(top, bottom, left, right, rows, cols)
