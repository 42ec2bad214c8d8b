import json

import numpy as np
import pytest

from core import paths
from core.models.architectures import FINE_CAM_LAYER, GRADCAM_LAYER, ModelBuildError, build_model, imagenet_weights_path
from core.models.registry import (ModelCard, ModelError, delete_model, find_model, list_models,
                           load_model, next_version, rename_model, save_model)


@pytest.fixture()
def user_models(tmp_path, monkeypatch):
    monkeypatch.setenv("PNEUMOSCAN_HOME", str(tmp_path))
    return paths.user_models_dir()


def _tiny_card(name="tiny", version=1):
    return ModelCard(name=name, architecture="custom_cnn", version=version, input_size=32, threshold=0.4)


def test_models_have_in_graph_preprocessing_and_a_named_gradcam_layer():
    for arch in ("custom_cnn", "mobilenet_v2"):
        model = build_model(arch, input_size=32 if arch == "custom_cnn" else 64)
        assert model.input_shape[-1] == 1
        assert model.get_layer(GRADCAM_LAYER) is not None
        assert any(layer.__class__.__name__ == "Rescaling" for layer in model.layers)
        # v2: the per-image intensity standardisation is part of the graph, and the finer map's layer exists
        assert model.layers[1].__class__.__name__ == "PercentileStretch"
        assert model.get_layer(FINE_CAM_LAYER) is not None
    # Compact enough to train on a 2-core machine (the v2 residual SE network: ~1.3 M).
    assert build_model("custom_cnn").count_params() < 2_000_000
    assert build_model("custom_cnn", standardise=False).layers[1].__class__.__name__ == "Rescaling"


def test_percentile_stretch_makes_the_input_independent_of_storage_scale():
    """A 12-bit image stored in 16 bits (values /16) or a washed-out window
    (an affine squeeze) reach the convolutions unchanged."""
    import numpy as np

    from core.models.layers import PercentileStretch

    rng = np.random.default_rng(0)
    x = rng.uniform(0.0, 1.0, (3, 32, 32, 1)).astype("float32")
    layer = PercentileStretch()
    reference = np.asarray(layer(x))
    for stored in (x / 16.0, 0.3 + 0.4 * x):
        np.testing.assert_allclose(np.asarray(layer(stored.astype("float32"))), reference, atol=1e-4)
    assert reference.min() == 0.0 and reference.max() == 1.0
    flat = np.full((1, 8, 8, 1), 0.5, "float32")
    assert np.all(np.asarray(layer(flat)) == 0.0)  # no contrast: no amplified noise


def test_imagenet_init_fails_clearly_without_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.delenv("PNEUMOSCAN_IMAGENET_WEIGHTS", raising=False)
    with pytest.raises(ModelBuildError, match="not available"):
        imagenet_weights_path()
    with pytest.raises(ModelBuildError):
        build_model("mobilenet_v2", 224, init="imagenet")


def test_round_trip_gives_the_same_predictions(user_models):
    model = build_model("custom_cnn", input_size=32)
    entry = save_model(model, _tiny_card())
    card = json.loads(entry.card_path.read_text())
    assert card["sha256"] and card["created"] and card["gradcam_layer"] == GRADCAM_LAYER
    assert [e.label for e in list_models() if not e.shipped] == ["tiny v1"]
    x = np.random.default_rng(0).random((3, 32, 32, 1), dtype=np.float32)
    loaded = load_model("tiny")
    assert loaded.threshold == 0.4 and loaded.input_size == 32
    np.testing.assert_allclose(loaded.keras_model(x).numpy(), model(x).numpy(), atol=1e-6)
    assert not [p for p in user_models.iterdir() if p.name.startswith(".")]  # no temp files left


def test_tampered_model_is_refused(user_models):
    entry = save_model(build_model("custom_cnn", input_size=32), _tiny_card())
    with open(entry.keras_path, "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ModelError, match="does not match its card"):
        load_model("tiny")


def test_versions_rename_and_delete(user_models):
    model = build_model("custom_cnn", input_size=32)
    save_model(model, _tiny_card(version=1))
    assert next_version("tiny") == 2
    v2 = save_model(model, _tiny_card(version=2))
    assert find_model("tiny").card.version == 2
    assert find_model("tiny v1").card.version == 1
    rename_model(v2, "renamed")
    assert find_model("renamed").card.version == 2
    delete_model(find_model("renamed"))
    assert [e.label for e in list_models() if not e.shipped] == ["tiny v1"]
    with pytest.raises(ModelError, match="no model named"):
        find_model("renamed")


def test_shipped_models_are_protected_and_valid():
    shipped = [e for e in list_models() if e.shipped]
    for entry in shipped:
        with pytest.raises(ModelError):
            delete_model(entry)
        assert "pneumoscan-cli train" in entry.card.training_command
        assert entry.card.validation_metrics["auroc"] > 0.9
        # v2 cards say what the model is for and how it did on another site's images
        assert entry.card.intended_use["population"]["age_years"]
        assert entry.card.site_validation["metrics"]["auroc"] > 0.9
        assert not entry.card.training_data["folder"].startswith("/")  # no build machine's paths


def test_imagenet_init_loads_a_local_weights_file(tmp_path, monkeypatch):
    """Where ImageNet weights exist locally (here: a stand-in file in Keras'
    legacy .h5 layout, as Keras' cache holds them), the backbone gets them."""
    import keras
    from keras.src.legacy.saving import legacy_h5_format
    import h5py

    source = keras.applications.MobileNetV2(input_shape=(96, 96, 3), include_top=False, weights=None)
    weights_file = tmp_path / "mobilenet_v2_no_top.h5"
    with h5py.File(weights_file, "w") as fh:
        legacy_h5_format.save_weights_to_hdf5_group(fh, source)
    monkeypatch.setenv("PNEUMOSCAN_IMAGENET_WEIGHTS", str(weights_file))
    model = build_model("mobilenet_v2", input_size=96, init="imagenet")
    expected = source.get_layer("Conv1").get_weights()[0]
    np.testing.assert_array_equal(model.get_layer("Conv1").get_weights()[0], expected)
