"""Blank borders: found, trimmed before the model, and the heatmap put back on the frame."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from core.imaging.borders import MAX_SIDE_SHARE, find_content_box
from core.imaging.preprocessing import film_to_model_input, load_for_model, to_model_input
from core.models.gradcam import onto_frame, upsample


def _film(rows=120, cols=150, seed=0) -> np.ndarray:
    """A textured stand-in for a chest film: every row and column has contrast."""
    rng = np.random.default_rng(seed)
    smooth = cv2.GaussianBlur(rng.random((rows, cols)).astype(np.float32), (0, 0), 3)
    return (0.2 + 0.6 * (smooth - smooth.min()) / np.ptp(smooth)).astype(np.float32)


def _framed(film, top, bottom, left, right, value=0.0, noise=0.0, seed=1):
    out = cv2.copyMakeBorder(film, top, bottom, left, right, cv2.BORDER_CONSTANT, value=value)
    if noise:
        jitter = np.random.default_rng(seed).normal(0, noise, out.shape).astype(np.float32)
        border = np.ones(out.shape, bool)
        border[top:top + film.shape[0], left:left + film.shape[1]] = False
        out[border] = np.clip(out[border] + jitter[border], 0, 1)
    return out


@pytest.mark.parametrize("value", [0.0, 1.0, 0.5])
def test_a_uniform_frame_of_any_colour_is_found_exactly(value):
    film = _film()
    box = find_content_box(_framed(film, 7, 3, 12, 0, value=value))
    assert (box.top, box.bottom, box.left, box.right) == (7, 7 + 120, 12, 12 + 150)
    assert not box.is_whole


def test_a_film_without_borders_is_left_whole():
    film = _film()
    box = find_content_box(film)
    assert box.is_whole
    np.testing.assert_array_equal(box.crop(film), film)


def test_compression_noise_on_the_border_still_counts_as_blank():
    # ~2 grey levels of noise, as a JPEG leaves on a black frame
    box = find_content_box(_framed(_film(), 10, 10, 10, 10, noise=0.008))
    assert (box.top, box.left) == (10, 10)
    assert (box.rows - box.bottom, box.cols - box.right) == (10, 10)


def test_a_mostly_blank_image_is_not_cut_down():
    # a vertical gradient: every row is uniform; trimming would leave less than half
    gradient = np.repeat(np.linspace(0, 1, 100, dtype=np.float32)[:, None], 80, axis=1)
    assert find_content_box(gradient).is_whole


def test_no_side_loses_more_than_its_share():
    film = _film(100, 100)
    wide_top = _framed(film, 80, 0, 0, 0)  # 44 % of the rows blank
    box = find_content_box(wide_top)
    assert box.top == int(box.rows * MAX_SIDE_SHARE)


def test_a_padded_file_reaches_the_model_as_the_film_did(tmp_path):
    film = _film(180, 240)
    cv2.imwrite(str(tmp_path / "film.png"), np.round(film * 255).astype(np.uint8))
    cv2.imwrite(str(tmp_path / "padded.png"), np.round(_framed(film, 20, 20, 30, 30) * 255).astype(np.uint8))
    x_film, loaded_film = load_for_model(tmp_path / "film.png", 64)
    x_padded, loaded_padded = load_for_model(tmp_path / "padded.png", 64)
    assert loaded_film.content_box is None
    # the same film, up to resampling (the padded file is decoded at a slightly different scale)
    inner = (slice(1, -1), slice(1, -1))  # the outermost line is blended with the border by the decode
    assert np.corrcoef(x_padded[inner].ravel(), x_film[inner].ravel())[0, 1] > 0.95
    assert np.abs(x_padded - x_film)[inner].mean() < 0.02
    top, bottom, left, right = loaded_padded.content_box
    assert (top, bottom, left, right) == pytest.approx((20 / 220, 200 / 220, 30 / 300, 270 / 300), abs=0.01)
    assert loaded_padded.pixels.shape[1] > loaded_padded.pixels.shape[0] * 1.3  # the reader's frame is kept whole
    # the untrimmed input would have been the film shrunk inside a black frame
    assert np.abs(to_model_input(loaded_padded.pixels, 64) - x_film).max() > 0.2


def test_the_map_lands_on_the_film_not_on_the_border():
    cam = np.zeros((7, 7), np.float32)
    cam[0, 0] = 1.0  # evidence in the film's top-left corner
    box = (0.25, 1.0, 0.5, 1.0)  # the film is the lower right of the frame
    frame = upsample(onto_frame(cam, box), (400, 400))
    # the film starts at row 100 and column 200; the smooth upsampling may spill a little over
    # its edge (as at any image edge), never far onto the border
    assert frame[:60].max() == 0 and frame[:, :160].max() == 0
    on_border = np.ones(frame.shape, bool)
    on_border[100:, 200:] = False
    assert frame[on_border].sum() < 0.1 * frame.sum()  # even for evidence in the film's very corner
    peak = np.unravel_index(np.argmax(frame), frame.shape)
    assert 100 <= peak[0] < 160 and 200 <= peak[1] < 260  # the film's own top-left corner
    assert onto_frame(cam, None) is cam  # nothing trimmed: the map is the frame's already


def test_screening_puts_the_map_of_a_padded_film_on_the_film(tmp_path):
    from engine_models import loaded_tiny, tiny_cnn

    from core.screening.screener import Screener

    film = _film(96, 128)
    cv2.imwrite(str(tmp_path / "padded.png"), np.round(_framed(film, 0, 0, 64, 0) * 255).astype(np.uint8))
    loaded = loaded_tiny(tiny_cnn(32, seed=3), name="tiny", version=1, input_size=32, threshold=0.5)
    (result,) = Screener(loaded, gradcam=True).screen([tmp_path / "padded.png"])
    assert result.ok and result.cam is not None
    heat = upsample(result.cam, result.image_shape)
    assert heat[:, :60].max() < 0.05  # the left third is the blank border
    assert film_to_model_input(film, 32)[1].is_whole


def _bench():
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "bench" / "border_trimming.py"
    spec = importlib.util.spec_from_file_location("border_trimming_bench", script)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_the_bench_pairs_each_file_whole_and_trimmed(tmp_path, capsys):
    import json

    film = _film(180, 240)
    cv2.imwrite(str(tmp_path / "film.png"), np.round(film * 255).astype(np.uint8))
    cv2.imwrite(str(tmp_path / "padded.png"), np.round(_framed(film, 0, 0, 40, 40) * 255).astype(np.uint8))
    bench = _bench()
    whole, trimmed, n_trimmed = bench.both_ways([str(tmp_path / "film.png"), str(tmp_path / "padded.png")], 48)
    assert n_trimmed == 1
    np.testing.assert_array_equal(whole[0], trimmed[0])  # nothing to trim: the same input
    assert np.abs(trimmed[1].astype(int) - trimmed[0]).mean() < 6  # the padded file, trimmed, is the film
    assert np.abs(whole[1].astype(int) - whole[0]).mean() > 20  # untrimmed, it was not
    assert bench.main(["--folder", str(tmp_path / "missing")]) == 2
    assert "not found" in json.loads(capsys.readouterr().out)["error"]


def test_training_decodes_films_as_screening_does(tmp_path):
    """Training's cache comes from the same preparation: a padded training film is trimmed too."""
    from core.training.batches import decode_samples
    from core.training.dataset import Sample

    film = _film(180, 240)
    cv2.imwrite(str(tmp_path / "film.png"), np.round(film * 255).astype(np.uint8))
    cv2.imwrite(str(tmp_path / "padded.png"), np.round(_framed(film, 30, 30, 0, 0, value=1.0) * 255).astype(np.uint8))
    samples = [Sample(str(tmp_path / name), "NORMAL", name) for name in ("film.png", "padded.png")]
    cache, kept, unreadable = decode_samples(samples, 48)
    assert len(kept) == 2 and not unreadable
    screened = load_for_model(tmp_path / "padded.png", 48)[0]
    np.testing.assert_array_equal(cache[1], np.round(screened * 255).astype(np.uint8))
    assert np.abs(cache[1].astype(int) - cache[0]).mean() < 6
