"""Screener: streaming, batching, bad files, Grad-CAM in the same pass, cancel, bounded look-ahead."""
from __future__ import annotations

import subprocess
import sys
import threading

import cv2
import numpy as np
import pytest

from core.imaging.loader import load_image
from core.imaging.preprocessing import to_model_input
from core.screening.screener import Screener
from engine_models import loaded_tiny, tiny_cnn, write_images

SIZE = 32


@pytest.fixture(scope="module")
def loaded():
    return loaded_tiny(tiny_cnn(SIZE, seed=7), name="tiny", version=2, input_size=SIZE, threshold=0.4)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    write_images(root, 10, size=48)
    (root / "broken.png").write_text("this is not an image")
    big = np.random.default_rng(1).integers(0, 256, (200, 300), dtype=np.uint8)
    cv2.imwrite(str(root / "big.jpg"), big)  # decoded reduced (max_side 64): shape from the header
    return root


def test_one_result_per_path_in_order(loaded, folder):
    paths = sorted(folder.iterdir())
    screener = Screener(loaded, batch_size=4)
    results = list(screener.screen(paths))
    assert [r.path for r in results] == [str(p) for p in paths]
    assert screener.device == "CPU"
    good = [r for r in results if r.ok]
    assert len(good) == len(paths) - 1
    for r in good:
        assert 0.0 <= r.probability <= 1.0 and r.cam is None
        assert (r.threshold, r.model, r.model_version, r.model_hash) == (0.4, "tiny", "2", loaded.sha256)
        assert r.kind in ("png", "jpeg") and r.prediction in ("PNEUMONIA", "NORMAL")


def test_probabilities_match_the_model(loaded, folder):
    paths = sorted(folder.glob("img_*.png"))
    results = list(Screener(loaded, batch_size=3).screen(paths))
    x = np.stack([to_model_input(load_image(p, max_side=2 * SIZE).pixels, SIZE) for p in paths])
    expected = loaded.keras_model(x, training=False).numpy()[:, 0]
    np.testing.assert_allclose([r.probability for r in results], expected, atol=1e-5)


def test_bad_file_is_an_error_row_not_a_stop(loaded, folder, tmp_path):
    paths = [folder / "img_000.png", folder / "broken.png", tmp_path / "missing.png", folder / "img_001.png"]
    results = list(Screener(loaded, batch_size=4).screen(paths))
    assert [r.ok for r in results] == [True, False, False, True]
    assert results[1].probability is None and results[1].prediction is None and results[1].error
    assert "not found" in results[2].error or "cannot read" in results[2].error


def test_all_bad_batch_needs_no_inference(loaded, folder):
    results = list(Screener(loaded, batch_size=2).screen([folder / "broken.png"] * 3))
    assert len(results) == 3 and not any(r.ok for r in results)


def test_full_resolution_shape_is_kept(loaded, folder):
    result = next(Screener(loaded).screen([folder / "big.jpg"]))
    assert result.image_shape == (200, 300)
    assert next(Screener(loaded).screen([folder / "img_000.png"])).image_shape == (48, 56)


def test_gradcam_in_the_same_pass(loaded, folder):
    paths = sorted(folder.glob("img_*.png"))
    plain = list(Screener(loaded, batch_size=4).screen(paths))
    with_cam = list(Screener(loaded, batch_size=4, gradcam=True).screen(paths))
    np.testing.assert_allclose([r.probability for r in with_cam], [r.probability for r in plain], atol=1e-5)
    for r in with_cam:
        assert r.cam.shape == (SIZE // 2, SIZE // 2) and r.cam.dtype == np.float32
        assert 0.0 <= r.cam.min() and r.cam.max() <= 1.0


def test_threshold_override_and_validation(loaded, folder):
    result = next(Screener(loaded, threshold=0.0).screen([folder / "img_000.png"]))
    assert result.threshold == 0.0 and result.prediction == "PNEUMONIA"
    with pytest.raises(ValueError):
        Screener(loaded, threshold=1.5)


def test_cancel_stops_within_one_batch(loaded, folder):
    paths = sorted(folder.glob("img_*.png")) * 4
    cancel = threading.Event()
    got = []
    for result in Screener(loaded, batch_size=4).screen(paths, cancel=cancel):
        got.append(result)
        cancel.set()
    assert 1 <= len(got) <= 4  # the rest of the current batch, nothing more


def test_lookahead_is_bounded(loaded, folder):
    pulled = []

    def lazy_paths():
        for i in range(1000):
            pulled.append(i)
            yield folder / "img_000.png"

    stream = Screener(loaded, batch_size=4, lookahead_batches=2).screen(lazy_paths())
    next(stream)
    assert len(pulled) <= 4 * (2 + 1)  # the look-ahead plus the batch in hand
    stream.close()  # closing early shuts the workers down


def test_empty_input(loaded):
    assert list(Screener(loaded).screen([])) == []


def test_no_tensorflow_at_import():
    code = ("import sys, core.screening.screener, core.models.gradcam, core.reading.store, core.cli.screen; "
            "sys.exit('tensorflow' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0
