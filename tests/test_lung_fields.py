"""The lung-field estimate behind bench/heatmaps.py, on a synthetic chest film whose lungs are known."""
from __future__ import annotations

import cv2
import numpy as np

from core.models.lung_fields import (THORAX_MARGIN, crop_to_thorax, estimate_lung_fields, heat_outside,
                                     prior_mask, thorax_box)


def _synthetic_chest(size: int = 224):
    """Dark air around a bright body; two dark lungs; a bright mediastinum and spine between them."""
    rng = np.random.default_rng(0)
    image = np.full((size, size), 0.08, np.float32)  # air around the patient
    cv2.ellipse(image, (size // 2, size // 2), (int(size * 0.42), int(size * 0.55)), 0, 0, 360, 0.75, -1)
    lungs = np.zeros((size, size), np.uint8)
    for cx in (0.32, 0.68):
        cv2.ellipse(lungs, (int(cx * size), int(0.47 * size)), (int(0.13 * size), int(0.27 * size)), 0, 0, 360, 1, -1)
    image[lungs.astype(bool)] = 0.3
    image[:, int(0.47 * size):int(0.53 * size)] = np.maximum(image[:, int(0.47 * size):int(0.53 * size)], 0.9)
    image[int(0.8 * size):] = np.maximum(image[int(0.8 * size):], 0.8)  # abdomen below the diaphragm
    image += rng.normal(0, 0.02, image.shape).astype(np.float32)
    return np.clip(image, 0, 1), lungs.astype(bool)


def test_the_estimate_finds_the_known_lungs_and_not_the_mediastinum_or_the_air():
    image, truth = _synthetic_chest()
    mask, used_prior = estimate_lung_fields(image)
    assert not used_prior
    iou = (mask & truth).sum() / (mask | truth).sum()
    assert iou > 0.7
    size = image.shape[0]
    assert not mask[:, int(0.48 * size):int(0.52 * size)].any()  # mediastinum
    assert not mask[:, :int(0.05 * size)].any() and not mask[:, -int(0.05 * size):].any()  # air beside the body


def test_a_featureless_image_falls_back_to_the_prior():
    mask, used_prior = estimate_lung_fields(np.full((200, 160), 0.5, np.float32))
    assert used_prior and mask.shape == (200, 160) and (mask == prior_mask((200, 160))).all()


def test_heat_outside_share_and_peak():
    mask = np.zeros((10, 10), bool)
    mask[:, :5] = True
    heat = np.zeros((10, 10), np.float32)
    heat[2, 2], heat[2, 8] = 1.0, 3.0  # a quarter of the heat inside, the peak outside
    share, peak_outside = heat_outside(heat, mask)
    assert share == 0.75 and peak_outside is True
    assert heat_outside(np.zeros((10, 10), np.float32), mask) == (None, None)


def test_the_thorax_box_holds_the_lungs_and_leaves_the_abdomen_and_air_out():
    image, truth = _synthetic_chest()
    top, bottom, left, right = thorax_box(image)
    ys, xs = np.nonzero(truth)
    size = image.shape[0]
    slack = round(THORAX_MARGIN * size) + 4  # the margin plus the estimate's own widening
    assert top <= ys.min() and bottom > ys.max() and left <= xs.min() and right > xs.max()
    assert top >= ys.min() - slack - 8 and bottom <= ys.max() + slack + 8
    assert bottom < 0.85 * size  # most of the abdomen below the diaphragm is cut
    crop = crop_to_thorax((image * 255).astype(np.uint8)[..., None], 64)
    assert crop.shape == (64, 64, 1) and crop.dtype == np.uint8


def test_a_lung_the_estimate_misses_is_not_cropped_away(monkeypatch):
    # A consolidated lung is as bright as soft tissue: the estimate may find the other side
    # only, and a crop to that side would cut the finding off.
    import core.models.lung_fields as lung_fields

    image, truth = _synthetic_chest()
    size = image.shape[0]
    one_side = truth.copy()
    one_side[:, size // 2:] = False
    monkeypatch.setattr(lung_fields, "estimate_lung_fields", lambda image: (one_side, False))
    _, _, left, right = thorax_box(image)
    xs = np.nonzero(truth)[1]
    assert left <= xs.min() and right > xs.max()


def test_no_crop_when_only_the_prior_was_found():
    flat = np.full((200, 160), 0.5, np.float32)
    assert thorax_box(flat) == (0, 200, 0, 160)


def test_the_bench_counts_empty_maps_per_part_and_leaves_them_out_of_the_shares():
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("heatmaps_bench", Path(__file__).parents[1] / "bench" / "heatmaps.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    summary = bench._summary([0.1, np.nan, 0.3, np.nan], [0.0, np.nan, 1.0, np.nan], [True, True, False, False])
    assert summary["empty_maps"] == 2
    assert summary["all_images"]["n"] == 2 and summary["all_images"]["empty_maps"] == 2
    assert summary["all_images"]["mean_share_outside"] == 0.2 and summary["all_images"]["peak_outside_rate"] == 0.5
    assert summary["called_pneumonia"] == {"n": 1, "empty_maps": 1, "mean_share_outside": 0.1,
                                           "median_share_outside": 0.1, "peak_outside_rate": 0.0}
