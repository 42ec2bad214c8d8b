"""The viewer's "Fine map": the card's finer heatmap, for the image on screen, on a worker."""
from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"
os.environ["PNEUMOSCAN_NO_FIRST_RUN"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import threading  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from desktop.fine_map import compute_fine_map, fine_cam_of, fine_map_source  # noqa: E402
from desktop.viewer import ViewerPanel  # noqa: E402
from desktop_helpers import source_images  # noqa: E402


@dataclass
class Card:
    name: str = "tiny"
    input_size: int = 64
    sha256: str = "tiny-fine"
    fine_cam: dict = field(default_factory=dict)


@dataclass
class Loaded:
    keras_model: object
    card: Card


@pytest.fixture(scope="module")
def loaded():
    import keras

    from core.models.architectures import FINE_CAM_LAYER, build_model

    keras.utils.set_random_seed(3)
    model = build_model("custom_cnn", input_size=64)
    return Loaded(model, Card(fine_cam={"layer": FINE_CAM_LAYER, "method": "layercam", "reference": 1e-3}))


def test_fine_map_is_the_cards_layer_on_the_absolute_scale(loaded):
    from core.models.gradcam import GradCam
    from core.imaging.preprocessing import load_for_model

    path = str(source_images("PNEUMONIA", 1)[0])
    fine = compute_fine_map(loaded, path)
    spec = loaded.card.fine_cam
    model_input, _ = load_for_model(path, 64)
    probs, expected = GradCam(loaded.keras_model, spec["layer"], spec["reference"], method=spec["method"])(
        model_input[None])
    np.testing.assert_allclose(fine, expected[0], atol=1e-5)
    assert fine.shape[0] > 4  # finer than the last conv grid of a 64 px model
    assert fine.max() <= probs[0] + 1e-6  # weighted by the probability, never stretched to 1
    assert fine_cam_of(Card()) is None and fine_map_source(None) is None


def test_viewer_toggle_computes_the_fine_map_on_a_worker(qtbot, loaded):
    threads = []

    def source(path):
        threads.append(threading.current_thread())
        return compute_fine_map(loaded, path)

    panel = ViewerPanel(heatmap_visible=True, opacity=0.6)
    qtbot.addWidget(panel)
    panel.show()
    assert panel.fine_box.isHidden()
    panel.set_fine_map_source(source)
    assert not panel.fine_box.isHidden()
    key = str(source_images("PNEUMONIA", 1)[0])
    coarse = np.zeros((2, 2), np.float32)
    with qtbot.waitSignal(panel.image_shown, timeout=20_000):
        panel.load(key, coarse, "image")
    assert not panel.fine_shown and threads == []  # off by default: nothing computed
    coarse_pixmap = panel.view._heat.pixmap().toImage()
    panel.fine_box.setChecked(True)
    qtbot.waitUntil(lambda: panel.fine_shown, timeout=60_000)
    assert threads and threads[0] is not threading.main_thread()
    fine_image = panel.view._heat.pixmap().toImage()
    assert fine_image.size() == coarse_pixmap.size() and fine_image != coarse_pixmap
    panel.fine_box.setChecked(False)  # back to the coarse map, nothing recomputed
    assert panel.view._heat.pixmap().toImage() == coarse_pixmap and len(threads) == 1
    panel.set_fine_map_source(None)  # a model without a fine map: the toggle hides
    assert panel.fine_box.isHidden() and not panel.fine_box.isChecked()
