"""The v2 training recipe's parts: augmentation and the validation protocol."""
from __future__ import annotations

import numpy as np
import pytest

from core.training.augmentation import augment
from core.training.dataset import Sample
from core.training.trainer import split_validation


def _image(seed: int = 0, size: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    chest = 120 + 80 * np.exp(-((xx - size / 2) ** 2 + (yy - size / 2) ** 2) / (size * 4.0))
    return np.clip(chest + rng.normal(0, 5, (size, size)), 0, 255).astype(np.uint8)[..., None]


def test_augment_keeps_shape_and_range_and_is_reproducible():
    image = _image()
    for level in ("none", "basic", "acquisition"):
        out = augment(image, np.random.default_rng(3), level)
        assert out.shape == image.shape and out.dtype == np.float32
        assert out.min() >= 0.0 and out.max() <= 1.0
        again = augment(image, np.random.default_rng(3), level)
        np.testing.assert_array_equal(out, again)
    np.testing.assert_allclose(augment(image, np.random.default_rng(0), "none"), image / 255.0, atol=1e-6)
    with pytest.raises(ValueError):
        augment(image, np.random.default_rng(0), "heavy")


def test_acquisition_augmentation_varies_more_than_basic():
    """Gamma, washed-out windows, blur, noise and JPEG widen the spread of image statistics."""
    image = _image(1)

    def spread(level):
        rng = np.random.default_rng(5)
        outs = np.stack([augment(image, rng, level) for _ in range(60)])
        sharpness = [np.abs(np.diff(o[..., 0], axis=1)).mean() for o in outs]
        return np.std(outs.reshape(60, -1).std(axis=1)), np.std(sharpness)

    basic, acquisition = spread("basic"), spread("acquisition")
    assert acquisition[1] > basic[1]


def _samples(patients: int, per_patient: int = 2) -> list[Sample]:
    out = []
    for p in range(patients):
        label = "PNEUMONIA" if p % 2 else "NORMAL"
        out += [Sample(f"/x/{label}/p{p}_{i}.png", label, f"p{p}") for i in range(per_patient)]
    return out


def test_validation_is_halved_by_patient_for_epoch_and_operating_point():
    select, calib, protocol = split_validation(_samples(40), seed=0)
    assert "halved by patient" in protocol
    assert select and calib
    assert not {s.patient for s in select} & {s.patient for s in calib}
    assert len(select) + len(calib) == 80
    for part in (select, calib):
        assert {s.label for s in part} == {"NORMAL", "PNEUMONIA"}


def test_a_tiny_validation_set_is_not_halved_and_says_so():
    select, calib, protocol = split_validation(_samples(3), seed=0)
    assert select == calib
    assert protocol.startswith("single validation set")
