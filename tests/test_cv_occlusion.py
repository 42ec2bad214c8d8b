"""The occlusion check of cross-validated models: does a call rest on the thorax or on the frame around it?"""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from conftest import copy_small_study
from core.models import lung_fields
from core.training.cross_validation import CVConfig, load_or_make_folds, result_path, run_protocol
from core.training.cv_occlusion import occluded, occlusion_path, occlusion_scores, run_occlusion, summarise_occlusion
from core.training.dataset import labelled_samples

SIZE = 32
BOX = (8, 24, 6, 26)  # (top, bottom, left, right): the "thorax" of every film here


def _films(count: int = 20):
    """Grey films; the label is written twice: a bright corner marker (frame) and a bright
    patch in the thorax, so a forward pass can read either one."""
    rng = np.random.default_rng(0)
    labels = np.arange(count) % 2
    images = rng.integers(90, 110, size=(count, SIZE, SIZE, 1)).astype(np.uint8)
    images[labels == 1, :3, :3] = 255  # a burned-in marker, outside the box
    images[labels == 1, 14:18, 14:18] = 250  # "consolidation", inside the box
    return images, labels


def _reads(rows: slice, cols: slice):
    """A fake model whose probability is whether a region is bright."""
    return lambda batch: (np.asarray(batch)[:, rows, cols, 0].mean(axis=(1, 2)) > 0.9).astype(np.float32)


@pytest.fixture
def fixed_box(monkeypatch):
    monkeypatch.setattr(lung_fields, "thorax_box", lambda image: BOX)


def test_a_model_reading_the_marker_is_caught_by_the_frame(fixed_box):
    images, labels = _films()
    scores = occlusion_scores(_reads(slice(0, 3), slice(0, 3)), images, labels)
    assert scores["auroc"] == 1.0 and scores["frame_only_auroc"] == 1.0
    assert scores["thorax_only_auroc"] == 0.5  # the marker is gone: no better than chance
    assert scores["no_box"] == 0 and scores["n"] == len(images)


def test_a_model_reading_the_lungs_keeps_its_call_on_the_thorax_alone(fixed_box):
    images, labels = _films()
    scores = occlusion_scores(_reads(slice(14, 18), slice(14, 18)), images, labels)
    assert scores["thorax_only_auroc"] == 1.0 and scores["frame_only_auroc"] == 0.5


def test_the_hidden_part_takes_the_films_mean_and_the_rest_is_untouched():
    images, _ = _films(2)
    thorax = occluded(images, [BOX, BOX], "thorax")
    frame = occluded(images, [BOX, BOX], "frame")
    top, bottom, left, right = BOX
    assert np.array_equal(thorax[:, top:bottom, left:right], images[:, top:bottom, left:right])
    assert np.all(frame[1, top:bottom, left:right] == np.round(images[1].mean()))
    assert np.all(thorax[1, :3, :3] == np.round(images[1].mean()))
    assert np.array_equal(frame[:, :top], images[:, :top])
    with pytest.raises(ValueError, match="keep must be one of"):
        occluded(images, [BOX, BOX], "lungs")


def test_films_without_a_thorax_box_are_left_out_and_counted(monkeypatch):
    images, labels = _films()
    whole = (0, SIZE, 0, SIZE)
    monkeypatch.setattr(lung_fields, "thorax_box", lambda image: whole if image[20, 0] == 0 else BOX)
    images[:4, 20, 0] = 0  # the first four films: only the prior was found
    scores = occlusion_scores(_reads(slice(0, 3), slice(0, 3)), images, labels)
    assert scores["no_box"] == 4 and scores["no_box_rate"] == pytest.approx(0.2)


def test_occlusion_is_measured_once_per_finished_full_film_fold(tmp_path):
    folder = copy_small_study(tmp_path / "data", per_class=12)
    config = CVConfig(folder=str(folder), out_dir=str(tmp_path / "cv"), folds=2, epochs=1, input_size=32,
                      batch_size=8)
    run_protocol(config, ["baseline"], only_folds=[0], log=lambda m: None)
    # A finished cropped fold has no frame to hide: it is skipped, not measured.
    shutil.copy(result_path(config, "baseline", 0), result_path(config, "thorax", 0))
    shutil.copytree(tmp_path / "cv" / "runs" / "baseline-fold0", tmp_path / "cv" / "runs" / "thorax-fold0")
    assert run_occlusion(config, ["baseline", "thorax"], log=lambda m: None) == [occlusion_path(config, "baseline", 0)]
    measured = json.loads(occlusion_path(config, "baseline", 0).read_text())
    samples = sorted(labelled_samples(config.folder), key=lambda s: s.path)
    assert measured["view"] == "full" and measured["n"] == len(load_or_make_folds(config, samples)[0])
    assert run_occlusion(config, ["baseline"], log=lambda m: None) == []  # measured once
    assert summarise_occlusion(config.out_dir)["baseline"]["folds"] == [0]
