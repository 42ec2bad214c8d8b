"""The window with a model that has a content scope check (pytest-qt, off-screen):
a study with films stored upside down is screened in the window; the turned films
wait in the out-of-scope queue with their reason and no call, the upright ones are
called. The other GUI tests use a model without a detector (metadata reasons only).
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from conftest import copy_small_study
from chest_films import films
from core.screening.results import OUT_OF_SCOPE
from core.models.scope import FRAMING, ORIENTATION, UNFAMILIAR
from core.reading.session import OUT_OF_SCOPE_QUEUE


SIZE = 64
TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def scoped_home(tmp_path_factory):
    """A PNEUMOSCAN_HOME with "scoped v1": an untrained 64-px custom CNN whose scope detector
    is fitted on 300 training films (the check must not need a good model)."""
    import keras

    from core.models.architectures import build_model
    from core.imaging.preprocessing import load_for_model, to_uint8
    from core.models.registry import ModelCard, find_model, save_model, save_scope_detector
    from core.models.scope import fit_scope_detector

    home = tmp_path_factory.mktemp("scoped_home")
    with pytest.MonkeyPatch.context() as env:  # a module's fixture: monkeypatch is per test
        env.setenv("PNEUMOSCAN_HOME", str(home))
        paths = films("NORMAL", 150) + films("PNEUMONIA", 150)
        images = np.stack([to_uint8(load_for_model(p, SIZE)[0]) for p in paths])
        order = np.random.default_rng(0).permutation(len(images))
        keras.utils.set_random_seed(0)
        model = build_model("custom_cnn", input_size=SIZE)
        detector = fit_scope_detector(model, images[order[:200]], images[order[200:]], false_flag_rate=0.05,
                                      architecture="custom_cnn")
        save_model(model, ModelCard(name="scoped", architecture="custom_cnn", input_size=SIZE, threshold=0.5))
        save_scope_detector(find_model("scoped"), detector)
    return home


def test_turned_films_wait_in_the_out_of_scope_queue_with_their_reason(qtbot, scoped_home, tmp_path, monkeypatch):
    from desktop.main_window import MainWindow
    from desktop.results_model import COL_AI_CALL, COL_STATUS
    from desktop.settings import AppSettings

    monkeypatch.setenv("PNEUMOSCAN_HOME", str(scoped_home))
    study = copy_small_study(tmp_path / "study", per_class=3, offset=300)  # films the detector never saw
    for path in sorted(study.rglob("*.jpeg")):  # each film also stored upside down
        upside_down = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)[::-1, ::-1]
        cv2.imwrite(str(path.with_name(f"turned-{path.name}")), upside_down)
    settings = AppSettings()
    settings.model_name = "scoped v1"
    window = MainWindow(settings, store_path=tmp_path / "store.sqlite3", quiet=True)
    qtbot.addWidget(window)
    window.resize(1280, 800)
    window.show()
    with qtbot.waitSignal(window.screening_finished, timeout=TIMEOUT_MS) as finished:
        window.start(study)
    assert finished.args[0]["screened"] == 12

    window.open_queue(OUT_OF_SCOPE_QUEUE)
    model = window.results_model
    queued = [model.key_at(r) for r in range(model.rowCount())]
    turned = [k for k in queued if Path(k).name.startswith("turned-")]
    assert len(turned) >= 5 and len(queued) - len(turned) <= 1  # the queue is the turned films
    status = {k: model.index(model.row_number(k), COL_STATUS).data() for k in turned}
    assert set(status.values()) <= {f"Out of scope: {reason}" for reason in (ORIENTATION, UNFAMILIAR, FRAMING)}
    assert list(status.values()).count(f"Out of scope: {ORIENTATION}") >= 4
    for key in turned:
        assert model.index(model.row_number(key), COL_AI_CALL).data() == OUT_OF_SCOPE
        assert window.session.row(key).probability is not None  # kept, only not called
    named = next(k for k in turned if status[k].endswith(ORIENTATION))
    window.session.go_to(named)
    qtbot.waitUntil(lambda: window.details.fields["Status"].text() == f"Out of scope: {ORIENTATION}")
    assert window.details.screen_anyway_button.isVisibleTo(window)
    window.close()
