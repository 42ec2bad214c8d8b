"""Grad-CAM: batched maps match single-image maps; the peak finds the evidence."""
from __future__ import annotations

import numpy as np
import pytest

from core.models.gradcam import GradCam, gradcam_batch, overlay, upsample
from engine_models import tiny_cnn

SIZE = 32


def square_images(count: int, with_square: bool, rng: np.random.Generator) -> np.ndarray:
    """Noise backgrounds; positives get a bright 6x6 square somewhere in the top-left quadrant."""
    images = rng.uniform(0.0, 0.6, (count, SIZE, SIZE, 1)).astype(np.float32)
    if with_square:
        for image in images:
            r, c = rng.integers(1, SIZE // 2 - 6, size=2)
            image[r:r + 6, c:c + 6] = 1.0
    return images


@pytest.fixture(scope="module")
def square_detector():
    """A tiny CNN trained for a few seconds to find the bright square."""
    import keras

    model = tiny_cnn(SIZE, seed=1)
    rng = np.random.default_rng(1)
    x = np.concatenate([square_images(300, True, rng), square_images(300, False, rng)])
    y = np.concatenate([np.ones(300), np.zeros(300)]).astype(np.float32)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=32, epochs=6, shuffle=True, verbose=0)
    return model


def test_batched_maps_equal_single_image_maps():
    model = tiny_cnn(SIZE, seed=3)
    batch = np.random.default_rng(3).uniform(0, 1, (6, SIZE, SIZE, 1)).astype(np.float32)
    cams = gradcam_batch(model, batch)
    assert cams.shape == (6, SIZE // 2, SIZE // 2) and cams.dtype == np.float32
    singles = np.stack([gradcam_batch(model, batch[i:i + 1])[0] for i in range(len(batch))])
    assert np.abs(cams - singles).max() < 1e-4
    assert cams.min() >= 0.0 and cams.max() <= 1.0


def test_fused_probabilities_equal_model_output():
    model = tiny_cnn(SIZE, seed=4)
    batch = np.random.default_rng(4).uniform(0, 1, (5, SIZE, SIZE, 1)).astype(np.float32)
    probs, cams = GradCam(model)(batch)
    np.testing.assert_allclose(probs, model(batch, training=False).numpy()[:, 0], atol=1e-6)
    assert cams.shape[0] == 5


def test_peak_falls_in_the_evidence_region(square_detector):
    rng = np.random.default_rng(99)
    positives = square_images(8, True, rng)
    probs, cams = GradCam(square_detector)(positives)
    assert np.mean(probs > 0.5) >= 0.75, "toy model did not learn the square"
    inside = 0
    for cam in cams:
        heat = upsample(cam, (SIZE, SIZE))
        r, c = np.unravel_index(np.argmax(heat), heat.shape)
        inside += int(r < SIZE // 2 and c < SIZE // 2)
    assert inside >= 6, f"peak in the top-left quadrant for only {inside}/8 images"


def test_flat_gradients_give_zero_maps_not_nan():
    model = tiny_cnn(SIZE, seed=5)
    head = model.layers[-1]
    head.set_weights([np.zeros_like(w) for w in head.get_weights()])  # output ignores the features
    cams = gradcam_batch(model, np.random.default_rng(5).uniform(0, 1, (3, SIZE, SIZE, 1)).astype(np.float32))
    assert not np.isnan(cams).any()
    assert np.all(cams == 0.0)


def test_saturated_probability_still_has_a_map():
    # The gradient is taken on the pre-sigmoid logit, so p == 1.0 exactly does not zero it.
    model = tiny_cnn(SIZE, seed=6)
    kernel, bias = model.layers[-1].get_weights()
    model.layers[-1].set_weights([kernel, bias + 60.0])
    batch = np.random.default_rng(6).uniform(0, 1, (2, SIZE, SIZE, 1)).astype(np.float32)
    probs, cams = GradCam(model)(batch)
    assert np.all(probs == 1.0)
    assert np.all(cams.max(axis=(1, 2)) == pytest.approx(1.0))


def test_missing_layer_is_a_clear_error():
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        GradCam(tiny_cnn(SIZE), "nope")


def test_upsample_and_overlay():
    cam = np.zeros((4, 4), np.float32)
    cam[0, 0] = 1.0
    big = upsample(cam, (40, 60))
    assert big.shape == (40, 60) and big.dtype == np.float32
    assert 0.0 <= big.min() and big.max() <= 1.0 and big[0, 0] == big.max()
    assert np.all(upsample(np.zeros((4, 4), np.float32), (10, 10)) == 0.0)

    pixels = np.full((40, 60), 0.5, np.float32)
    rgb = overlay(pixels, cam, alpha=0.5)  # heatmap upsampled to the image on the way
    assert rgb.shape == (40, 60, 3) and rgb.dtype == np.uint8
    assert rgb[0, 0, 0] > rgb[0, 0, 2]  # hot corner is red in RGB order
    assert rgb[-1, -1, 2] > rgb[-1, -1, 0]  # cold corner is blue
    np.testing.assert_array_equal(overlay(pixels, big, alpha=0.0)[..., 1], np.full((40, 60), 128, np.uint8))


@pytest.mark.parametrize("arch, size, grid", [("custom_cnn", 64, 4), ("mobilenet_v2", 32, 1)])
def test_project_architectures(arch, size, grid):
    from core.models.architectures import GRADCAM_LAYER, build_model

    model = build_model(arch, size)
    batch = np.random.default_rng(8).uniform(0, 1, (3, size, size, 1)).astype(np.float32)
    probs, cams = GradCam(model, GRADCAM_LAYER)(batch)
    assert cams.shape == (3, grid, grid) and not np.isnan(cams).any()
    np.testing.assert_allclose(probs, model(batch, training=False).numpy()[:, 0], atol=1e-5)


def test_registry_round_trip_keeps_maps(tmp_path):
    from core.models.architectures import build_model
    from core.models.registry import ModelCard, load_model, save_model

    model = build_model("custom_cnn", 64)
    batch = np.random.default_rng(9).uniform(0, 1, (2, 64, 64, 1)).astype(np.float32)
    entry = save_model(model, ModelCard(name="cnn", architecture="custom_cnn", input_size=64), tmp_path)
    loaded = load_model(entry)
    np.testing.assert_allclose(gradcam_batch(loaded.keras_model, batch, loaded.card.gradcam_layer),
                               gradcam_batch(model, batch), atol=1e-5)


def bright_spot_detector():
    """A hand-set CNN: 'last_conv' fires where the local mean is bright (> 0.4), GAP,
    then a steep logistic head. Noise backgrounds fire weakly here and there; the
    square fires strongly. Deterministic, so the heat test cannot pass by luck."""
    import keras

    inputs = keras.Input((SIZE, SIZE, 1))
    x = keras.layers.Conv2D(1, 3, padding="same", activation="relu", name="last_conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model(inputs, outputs)
    model.get_layer("last_conv").set_weights([np.full((3, 3, 1, 1), 1 / 9, np.float32), np.array([-0.4], np.float32)])
    model.layers[-1].set_weights([np.array([[1000.0]], np.float32), np.array([-4.0], np.float32)])
    return model


def test_absolute_heat_is_low_on_confident_normals():
    """A fixed reference plus probability weighting: normals show little heat, where
    per-image normalisation painted a saturated spot on every image."""
    from core.models.gradcam import fit_reference

    model = bright_spot_detector()
    rng = np.random.default_rng(7)
    val_x = np.concatenate([square_images(16, True, rng), square_images(16, False, rng)])
    reference = fit_reference(model, val_x, np.r_[np.ones(16), np.zeros(16)])
    positives, normals = square_images(12, True, rng), square_images(12, False, rng)
    p_pos, heat_pos = GradCam(model, reference=reference)(positives)
    p_neg, heat_neg = GradCam(model, reference=reference)(normals)
    assert (p_pos > 0.9).all() and (p_neg < 0.2).all(), (p_pos, p_neg)
    _, old_style = GradCam(model)(normals)  # no reference: per-image peaks (times p)
    assert heat_neg.mean() < 0.1 * heat_pos.mean(), (heat_neg.mean(), heat_pos.mean())
    assert heat_neg.max(axis=(1, 2)).mean() < 0.1
    assert heat_pos.max(axis=(1, 2)).mean() > 0.5
    # Without a reference each normal's own peak would be scaled to its probability, not to evidence.
    assert heat_neg.max() <= old_style.max() + 1e-6


def test_layercam_on_a_finer_layer_finds_the_square(square_detector):
    layer = [l.name for l in square_detector.layers if "conv" in l.name][0]
    rng = np.random.default_rng(11)
    positives = square_images(8, True, rng)
    _, cams = GradCam(square_detector, layer, method="layercam")(positives)
    assert cams.max() > 0
    with pytest.raises(ValueError):
        GradCam(square_detector, method="nope")


def test_map_concentration_orders_spot_and_flat_maps():
    from core.models.gradcam import map_concentration

    spot = np.zeros((1, 10, 10)); spot[0, 3, 3] = 1.0
    flat = np.ones((1, 10, 10))
    assert map_concentration(spot)[0] == pytest.approx(1.0)
    assert map_concentration(flat)[0] == pytest.approx(0.1)


def _fine_layer_then_stride_2(seed: int = 0):
    """A fine layer whose only way forward is a 1x1 stride-2 convolution (custom_cnn's shortcut
    into its 1/16 stage has that shape): its gradient reaches every other cell only."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((16, 16, 1))
    fine = layers.Conv2D(4, 3, padding="same", activation="relu", name="fine",
                         kernel_initializer=keras.initializers.RandomUniform(0.05, 0.5))(inputs)
    x = layers.Conv2D(4, 1, strides=2, name="down", kernel_initializer=keras.initializers.RandomUniform(0.05, 0.5))(fine)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(1, activation="sigmoid", kernel_initializer="ones")(x))


def test_plain_layercam_paints_the_stride_lattice_and_the_smoothed_one_does_not():
    model = _fine_layer_then_stride_2()
    batch = np.random.default_rng(5).uniform(0.2, 1.0, (3, 16, 16, 1)).astype(np.float32)
    _, plain = GradCam(model, "fine", method="layercam")(batch)
    _, smooth = GradCam(model, "fine", method="layercam_smooth")(batch)
    # The "even grid of dots": every odd row and column of the plain map is empty.
    assert plain[:, 1::2, :].max() == 0 and plain[:, :, 1::2].max() == 0 and plain.max() > 0
    assert (smooth[:, 1:-1, 1:-1] > 0).all()
