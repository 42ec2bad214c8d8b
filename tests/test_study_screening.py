"""core.reading.study_screening.screen_study: the store's reuse rules and one decode per file."""
from __future__ import annotations

import threading

import pytest

import core.imaging.loader
from core.reading.store import ResultStore
from core.reading.study_screening import SCREENED, STORED, THUMBNAIL, plan_study, screen_study
from engine_models import loaded_tiny, tiny_cnn, write_images


@pytest.fixture(scope="module")
def model():
    return loaded_tiny(tiny_cnn(32))


@pytest.fixture
def study(tmp_path):
    folder = tmp_path / "study"
    write_images(folder, 5, seed=3)
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return folder.resolve()


@pytest.fixture
def store(tmp_path):
    with ResultStore(tmp_path / "store.sqlite3") as s:
        yield s


@pytest.fixture
def decodes(monkeypatch):
    """Counts core.imaging.loader.load_image calls per file."""
    counts: dict[str, int] = {}
    original = core.imaging.loader.load_image
    lock = threading.Lock()

    def counting(path, max_side=None):
        with lock:
            counts[str(path)] = counts.get(str(path), 0) + 1
        return original(path, max_side)

    monkeypatch.setattr(core.imaging.loader, "load_image", counting)
    return counts


def test_one_decode_feeds_the_model_input_and_the_thumbnail(study, store, model, decodes):
    items = list(screen_study(study, model, store, gradcam=True, thumbnail_side=16))
    assert [i.kind for i in items] == [SCREENED] * 6
    assert [i.done for i in items] == list(range(1, 7)) and items[-1].total == 6
    good = [i for i in items if i.result.ok]
    assert len(good) == 5 and all(i.thumbnail is not None and max(i.thumbnail.shape) == 16 for i in good)
    assert all(i.result.cam is not None for i in good)
    assert set(decodes.values()) == {1}, decodes  # every file, the broken one included, decoded once


def test_reuse_rules_stored_results_failed_files_and_missing_heatmaps(study, store, model):
    first = list(screen_study(study, model, store, gradcam=False))
    assert sum(not i.result.ok for i in first) == 1
    # Without heatmaps: the good files are reused, the failed one is tried again.
    plan = plan_study(study, store, model.sha256, gradcam=False)
    assert len(plan.reuse) == 5 and plan.retried == 1 and plan.todo == [str(study / "broken.png")]
    assert len(plan_study(study, store, model.sha256, gradcam=False, retry_failed=False).reuse) == 6
    # Heatmaps asked for: stored results without one are screened again.
    plan = plan_study(study, store, model.sha256, gradcam=True)
    assert plan.missing_heatmaps == 5 and len(plan.todo) == 6
    again = list(screen_study(study, model, store, gradcam=True))
    assert all(i.kind == SCREENED for i in again)
    # Now everything good is stored with its heatmap.
    third = list(screen_study(study, model, store, gradcam=True, threshold=0.0))
    kinds = {i.result.path: i.kind for i in third}
    assert sorted(kinds.values()) == [SCREENED] + [STORED] * 5
    assert all(i.result.threshold == 0.0 for i in third if i.kind == STORED)  # re-labelled, not re-run
    assert len(plan_study(study, store, model.sha256, gradcam=True, rescreen=True).todo) == 6


def test_stored_first_then_fresh_then_thumbnails_of_stored_and_lazy_model_loading(study, store, model):
    files = sorted(str(p) for p in study.glob("img_*.png"))
    list(screen_study(files[:3], model, store, gradcam=False, study_folder=study))
    loads = []

    def load():
        loads.append(1)
        return model

    items = list(screen_study(study, load, store, gradcam=False, stored_first=True, thumbnail_side=8,
                              model_hash=model.sha256))
    kinds = [i.kind for i in items]
    assert kinds[:3] == [STORED] * 3 and kinds[3:6] == [SCREENED] * 3 and set(kinds[6:]) == {THUMBNAIL}
    assert loads == [1]
    # Everything stored (the broken file not retried): the model is never loaded.
    list(screen_study(study, load, store, gradcam=False, retry_failed=False, model_hash=model.sha256))
    assert loads == [1]


def test_cancel_stops_between_files(study, store, model):
    cancel = threading.Event()
    seen = []
    for item in screen_study(study, model, store, gradcam=False, cancel=cancel, batch_size=1):
        seen.append(item)
        cancel.set()
    assert len(seen) == 1
