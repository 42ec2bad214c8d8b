"""Scope check: metadata rules, the content detector, its sidecar, and the CLI contracts."""
from __future__ import annotations

import csv
import io
import json
import sqlite3

import cv2
import numpy as np
import pytest

from conftest import copy_small_study
from chest_films import films
from conftest_loader_helpers import read_grey, save, with_pixels
from core import cli
from core.models.architectures import FINE_CAM_LAYER, GRADCAM_LAYER
from core.models.scope import (FRAMING, LATERAL, NOT_CHEST, ORIENTATION, UNFAMILIAR, GaussianBlock, LayoutCheck,
                        ScopeDetector, age_reason, fit_from_features, metadata_reason, not_an_xray,
                        patient_age_years)

SIZE = 64
POPULATION = {"age_years": [1, 5]}


# ------------------------------------------------------------- metadata rules

@pytest.mark.parametrize("meta, reason", [
    ({"Modality": "DX", "BodyPartExamined": "CHEST", "ViewPosition": "PA", "PatientAge": "003Y"}, ""),
    ({"Modality": "CR", "BodyPartExamined": "THORAX", "ViewPosition": "AP"}, ""),
    ({}, ""),  # a JPEG: nothing to judge by
    ({"Modality": "CT"}, "not an X-ray (CT)"),
    ({"Modality": "MR", "BodyPartExamined": "CHEST"}, "not an X-ray (MR)"),
    ({"Modality": "MG"}, NOT_CHEST),
    ({"Modality": "DX", "BodyPartExamined": "KNEE"}, NOT_CHEST),
    ({"Modality": "DX", "BodyPartExamined": "", "ViewPosition": "LL"}, LATERAL),
    ({"Modality": "CR", "ViewPosition": "LATERAL"}, LATERAL),
    ({"Modality": "DX", "PatientAge": "054Y"}, "patient age 54 y: outside the model's population"),
    ({"Modality": "DX", "PatientAge": "005Y"}, ""),
    ({"Modality": "DX", "PatientAge": "006M"}, "patient age 0.5 y: outside the model's population"),
    ({"Modality": "DX", "PatientBirthDate": "19700301", "StudyDate": "20240131"},
     "patient age 54 y: outside the model's population"),
    ({"Modality": "DX", "PhotometricInterpretation": "RGB"}, not_an_xray("colour image")),
    ({"Modality": "CT", "ImageType": "ORIGINAL\\PRIMARY\\LOCALIZER"}, "not an X-ray (CT)"),
])
def test_metadata_reasons(meta, reason):
    assert metadata_reason(meta, POPULATION) == reason


def test_no_age_rule_without_a_stated_population():
    assert metadata_reason({"Modality": "DX", "PatientAge": "054Y"}, {}) == ""
    assert metadata_reason({"Modality": "DX", "PatientAge": "054Y"}, {"age_years": "adults"}) == ""


def test_patient_age_parsing():
    assert patient_age_years({"PatientAge": "054Y"}) == 54
    assert patient_age_years({"PatientAge": "018M"}) == pytest.approx(1.5)
    assert patient_age_years({"PatientAge": "010D"}) == pytest.approx(10 / 365.25)
    assert patient_age_years({"PatientBirthDate": "20200615", "StudyDate": "20230615"}) == pytest.approx(3, abs=0.01)
    assert patient_age_years({"PatientAge": "garbage", "PatientBirthDate": "2020"}) is None
    assert age_reason(54) == "patient age 54 y: outside the model's population"


def _dicom(path, **attrs):
    pixels = cv2.resize(read_grey(films("NORMAL", 1)[0]), (96, 96))
    return save(with_pixels(pixels, "MONOCHROME2", 8, **attrs), path)


def test_loader_meta_feeds_the_rules(tmp_path, train_dir):
    from core.imaging.loader import load_image

    cases = {
        "ct.dcm": ({"Modality": "CT"}, "not an X-ray (CT)"),
        "lateral.dcm": ({"ViewPosition": "LL"}, LATERAL),
        "adult.dcm": ({"PatientAge": "054Y"}, "patient age 54 y: outside the model's population"),
        "born.dcm": ({"PatientBirthDate": "19700301"}, "patient age 54 y: outside the model's population"),
        "knee.dcm": ({"BodyPartExamined": "KNEE"}, NOT_CHEST),
        "child.dcm": ({"PatientAge": "003Y"}, ""),
    }
    for name, (attrs, reason) in cases.items():
        meta = load_image(_dicom(tmp_path / name, **attrs)).meta
        assert metadata_reason(meta, POPULATION) == reason, name


# ------------------------------------------------------------- detector

def test_gaussian_block_distance_is_mahalanobis_when_all_components_are_kept():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 6)) @ rng.normal(size=(6, 6))
    block = GaussianBlock.fit(x)
    near, far = x[:5], x[:5] * 6
    assert np.all(block.distance(far) > block.distance(near))
    truncated = GaussianBlock.fit(x, max_components=3)  # the rest share one variance
    assert np.all(truncated.distance(far) > truncated.distance(near))


def test_fit_refuses_too_few_images():
    few = [np.zeros((5, 3))]
    with pytest.raises(ValueError, match="at least 20"):
        fit_from_features([], few, few)


def _chest_inputs(paths) -> np.ndarray:
    from core.imaging.preprocessing import load_for_model, to_uint8

    return np.stack([to_uint8(load_for_model(p, SIZE)[0]) for p in paths])


@pytest.fixture(scope="module")
def chest_split():
    paths = films("NORMAL", 200) + films("PNEUMONIA", 200)
    images = _chest_inputs(paths)
    order = np.random.default_rng(0).permutation(len(images))
    return images[order[:250]], images[order[250:350]], images[order[350:]]  # fit, held out, unseen


@pytest.fixture(scope="module")
def tiny_detector(chest_split):
    from core.models.architectures import build_model
    from core.models.scope import fit_scope_detector

    import keras

    fit, held, _ = chest_split
    keras.utils.set_random_seed(0)
    model = build_model("custom_cnn", input_size=SIZE)  # untrained: the check must not need a good model
    return model, fit_scope_detector(model, fit, held, false_flag_rate=0.05, architecture="custom_cnn")


def _scores(model, detector, images_uint8):
    from core.models.scope import compile_scope_forward

    batch = images_uint8.astype(np.float32) / 255.0
    _, features = compile_scope_forward(model, detector.layers)(batch)
    return detector.scores(features, batch)


def _out_of_scope_images(chest_uint8) -> dict[str, np.ndarray]:
    import ood_data

    rng = np.random.default_rng(1)
    ct = [im for ims in ood_data.dicom_images(names=("CT_small.dcm", "MR_small.dcm")).values() for im in ims]
    assert len(ct) == 2
    resize = lambda ims: np.stack([cv2.resize(im, (SIZE, SIZE), interpolation=cv2.INTER_AREA) for im in ims])[..., None]
    return {
        "noise": resize(ood_data.noise(6, rng)),
        "document": resize(ood_data.documents(4, rng)),
        "ct_mr": resize(ct),
        "inverted": 255 - chest_uint8[:10],
    }


def test_detector_flags_out_of_scope_images_but_not_unseen_training_like_ones(tiny_detector, chest_split):
    model, detector = tiny_detector
    _, _, unseen = chest_split
    assert detector.layers == [FINE_CAM_LAYER, GRADCAM_LAYER]
    assert np.mean(detector.flags(_scores(model, detector, unseen))) <= 0.2
    for name, images in _out_of_scope_images(unseen).items():
        assert np.all(detector.flags(_scores(model, detector, images))), name


def test_detector_round_trips_through_plain_arrays(tiny_detector, chest_split, tmp_path):
    model, detector = tiny_detector
    path = tmp_path / "d.scope.npz"
    detector.save(path)
    again = ScopeDetector.load(path)  # allow_pickle=False inside
    assert again.layers == detector.layers and again.threshold == detector.threshold
    images = chest_split[2][:8]
    np.testing.assert_allclose(_scores(model, again, images), _scores(model, detector, images),
                               rtol=1e-5, atol=1e-5)  # float32 features
    assert again.layout.threshold == detector.layout.threshold
    turned = np.concatenate([images, images[:, ::-1, ::-1]])
    np.testing.assert_allclose(again.layout.scores(turned), detector.layout.scores(turned), rtol=1e-9)
    path.write_bytes(b"not an npz")
    with pytest.raises(ValueError, match="unreadable"):
        ScopeDetector.load(path)


def _closer(images_uint8, fraction=0.7):
    """The central `fraction` of each image, resized back: the thorax fills more of the frame."""
    m = int(SIZE * (1 - fraction) / 2)
    return np.stack([cv2.resize(im[m:SIZE - m, m:SIZE - m], (SIZE, SIZE), interpolation=cv2.INTER_LINEAR)
                     for im in images_uint8[..., 0]])[..., None]


@pytest.fixture(scope="module")
def layout_check(chest_split):
    fit, held, _ = chest_split
    return LayoutCheck.fit(fit, held, false_flag_rate=0.025)


def test_layout_check_names_turned_and_closer_chests_and_passes_upright_ones(layout_check, chest_split):
    _, _, unseen = chest_split

    def share(images, reason):
        return np.mean([r == reason for r in layout_check.reasons(images)])

    assert share(unseen, "") >= 0.9  # upright chests of patients it never saw
    assert share(unseen[:, ::-1, ::-1], ORIENTATION) >= 0.9  # upside down
    assert share(unseen[:, ::-1], ORIENTATION) >= 0.9
    assert share(np.rot90(unseen, axes=(1, 2)), ORIENTATION) >= 0.9
    assert share(_closer(unseen), FRAMING) >= 0.75  # the Gaussian alone misses most of these
    widened = np.stack([cv2.resize(im[:, 10:54], (SIZE, SIZE)) for im in unseen[..., 0]])[..., None]
    assert share(widened, FRAMING) >= 0.75  # a square adult film squashed like the landscape training ones
    scores = layout_check.scores(unseen)
    assert np.all(np.isfinite(scores)) and np.all(scores >= 0)


def test_the_two_criteria_share_the_false_flag_rate(tiny_detector, chest_split):
    _, detector = tiny_detector
    assert detector.layout is not None and detector.false_flag_rate == 0.05
    assert detector.layout.false_flag_rate == pytest.approx(0.025)
    assert detector.heldout_flag_rate <= 0.05 + 1e-9
    summary = detector.summary()
    assert summary["layout"]["classes"][0] == "as_trained" and summary["layout"]["threshold"] > 0


def test_content_reasons_name_unfamiliar_images_and_turned_chests(tiny_detector, chest_split):
    from core.models.scope import compile_scope_forward

    model, detector = tiny_detector
    unseen = chest_split[2][:12]
    noise = np.random.default_rng(3).integers(0, 256, (4, SIZE, SIZE, 1), np.uint8)
    for images, allowed, missed in ((noise, {UNFAMILIAR}, 0), (unseen[:, ::-1, ::-1], {UNFAMILIAR, ORIENTATION}, 1)):
        batch = images.astype(np.float32) / 255.0
        _, features = compile_scope_forward(model, detector.layers)(batch)
        scores, reasons = detector.assess(features, batch)
        assert len(scores) == len(reasons) == len(images)
        assert set(reasons) - {""} <= allowed and reasons.count("") <= missed


def test_detectors_saved_before_the_layout_check_still_load(tiny_detector, chest_split, tmp_path):
    model, detector = tiny_detector
    arrays = {k: v for k, v in detector.to_arrays().items() if not k.startswith("layout_")}
    path = tmp_path / "old.scope.npz"
    np.savez(path, **arrays)
    old = ScopeDetector.load(path)
    assert old.layout is None
    images = chest_split[2][:6]
    batch = images.astype(np.float32) / 255.0
    from core.models.scope import compile_scope_forward

    _, features = compile_scope_forward(model, old.layers)(batch)
    scores, reasons = old.assess(features, batch)
    assert reasons == [UNFAMILIAR if s > old.threshold else "" for s in scores]


def test_other_models_fall_back_to_layers_by_resolution():
    from engine_models import tiny_cnn

    from core.models.scope import scope_layers

    layers = scope_layers(tiny_cnn(32), "tiny_cnn")
    assert len(layers) == 2 and layers[-1] == "last_conv"


# ------------------------------------------------------------- registry + screening + CLI

@pytest.fixture
def registered(home, tiny_detector):
    from core.models.registry import ModelCard, find_model, save_model, save_scope_detector

    model, detector = tiny_detector
    card = ModelCard(name="scoped", architecture="custom_cnn", input_size=SIZE, threshold=0.5,
                     intended_use={"population": POPULATION})
    save_model(model, card)
    return save_scope_detector(find_model("scoped"), detector)


def test_sidecar_is_recorded_verified_and_loaded(registered):
    from core.models.registry import ModelError, delete_model, load_model, scope_detector_path

    sidecar = scope_detector_path(registered)
    assert sidecar.name == "scoped-v1.scope.npz" and sidecar.is_file()
    recorded = registered.card.scope_detector
    assert recorded["file"] == sidecar.name and len(recorded["sha256"]) == 64
    assert recorded["false_flag_rate"] == 0.05 and recorded["layers"] == [FINE_CAM_LAYER, GRADCAM_LAYER]
    assert json.loads(registered.card_path.read_text())["scope_detector"]["threshold"] == recorded["threshold"]
    assert load_model("scoped").scope_detector is not None
    card_text = registered.card_path.read_text()
    registered.card_path.write_text(card_text.replace('"model_sha256": "', '"model_sha256": "0', 1))
    with pytest.raises(ModelError, match="another model file"):
        load_model("scoped")  # a card copied from a parent model names the parent's detector
    registered.card_path.write_text(card_text)
    sidecar.write_bytes(sidecar.read_bytes() + b"x")
    with pytest.raises(ModelError, match="does not match"):
        load_model("scoped")
    assert load_model("scoped", scope=False).scope_detector is None
    delete_model(registered)
    assert not sidecar.exists()


def test_models_without_detector_load_with_none(home):
    from engine_models import save_tiny_model

    from core.models.registry import load_model

    entry = save_tiny_model(home / "models")
    assert load_model(entry).scope_detector is None


def _study(tmp_path, chest_count=4):
    folder = copy_small_study(tmp_path / "study", per_class=chest_count, offset=200)
    cv2.imwrite(str(folder / "NORMAL" / "noise.png"), np.random.default_rng(0).integers(0, 256, (90, 90), np.uint8))
    _dicom(folder / "PNEUMONIA" / "ct.dcm", Modality="CT")
    return folder


def test_screener_calls_out_of_scope_and_applies_the_temperature(registered, tmp_path):
    from core.models.calibration import apply_temperature
    from core.models.registry import load_model
    from core.screening.results import OUT_OF_SCOPE
    from core.screening.screener import Screener

    folder = _study(tmp_path)
    loaded = load_model("scoped")
    paths = sorted(str(p) for p in folder.rglob("*") if p.is_file())
    plain = {r.path: r for r in Screener(loaded, batch_size=4).screen(paths)}
    assert plain[str(folder / "NORMAL" / "noise.png")].scope == UNFAMILIAR
    assert plain[str(folder / "PNEUMONIA" / "ct.dcm")].scope == "not an X-ray (CT)"
    for result in plain.values():
        assert result.scope_score is not None
        assert (result.prediction == OUT_OF_SCOPE) == bool(result.scope)
        assert result.probability is not None  # kept, out of scope or not
    loaded.card.temperature = 3.0
    warm = {r.path: r for r in Screener(loaded, batch_size=4, gradcam=True).screen(paths)}
    for path, result in warm.items():
        expected = float(apply_temperature([plain[path].probability], 3.0)[0])
        assert result.probability == pytest.approx(expected, abs=1e-4)
        assert result.scope == plain[path].scope and result.cam is not None
        # the Grad-CAM pass computes the same pooled features (one fused pass)
        assert result.scope_score == pytest.approx(plain[path].scope_score, rel=1e-3, abs=1e-3)


def test_screener_says_which_chests_are_turned(registered, tmp_path):
    from core.models.registry import load_model
    from core.screening.screener import Screener

    folder = copy_small_study(tmp_path / "study", per_class=6, offset=200)
    upright = sorted(folder.rglob("*.jpeg"))
    for path in upright[:6]:  # stored upside down, as a wrongly hung film would be
        cv2.imwrite(str(path.with_name("turned-" + path.name)), cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)[::-1, ::-1])
    results = list(Screener(load_model("scoped"), batch_size=4).screen(sorted(str(p) for p in folder.rglob("*.jpeg"))))
    turned = [r.scope for r in results if "turned-" in r.path]
    assert len(turned) == 6 and turned.count(ORIENTATION) >= 4
    assert all(r.scope in (ORIENTATION, UNFAMILIAR) for r in results if "turned-" in r.path)
    assert sum(bool(r.scope) for r in results if "turned-" not in r.path) <= 2


def test_screen_csv_has_the_scope_column(registered, tmp_path, capsys):
    folder = _study(tmp_path)
    assert cli.main(["screen", str(folder), "--model", "scoped"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["path", "probability", "prediction", "threshold", "model", "error", "scope"]
    body = {row[0]: row for row in rows[1:]}
    assert body[str(folder / "NORMAL" / "noise.png")][2:] == ["OUT_OF_SCOPE", "0.5", "scoped v1", "", UNFAMILIAR]
    assert body[str(folder / "PNEUMONIA" / "ct.dcm")][6] == "not an X-ray (CT)"
    for row in rows[1:]:
        assert row[1] and (row[2] == "OUT_OF_SCOPE") == bool(row[6])
    # Stored results keep the scope: a rerun reuses them and says the same.
    assert cli.main(["screen", str(folder), "--model", "scoped"]) == 0
    assert list(csv.reader(io.StringIO(capsys.readouterr().out))) == rows


def test_evaluate_counts_out_of_scope_and_measures_the_rest(registered, tmp_path, capsys):
    folder = _study(tmp_path)
    out_csv = tmp_path / "rows.csv"
    assert cli.main(["evaluate", str(folder), "--model", "scoped", "--json", "--csv", str(out_csv)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["out_of_scope"] >= 2
    assert result["n"] + result["out_of_scope"] == 10
    predictions = [row["prediction"] for row in csv.DictReader(out_csv.open())]
    assert predictions.count("OUT_OF_SCOPE") == result["out_of_scope"]


def test_fit_scope_command_fits_on_the_models_training_split(home, tmp_path, capsys, train_dir):
    from core.models.architectures import build_model
    from core.models.registry import ModelCard, load_model, save_model

    folder = copy_small_study(tmp_path / "train", per_class=45)
    card = ModelCard(name="refit", architecture="custom_cnn", input_size=SIZE,
                     training_data={"val_fraction": 0.15, "split_seed": 0})
    save_model(build_model("custom_cnn", input_size=SIZE), card)
    code = cli.main(["fit-scope", str(folder), "--model", "refit", "--false-flag-rate", "0.05"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["file"] == "refit-v1.scope.npz" and summary["false_flag_rate"] == 0.05
    assert summary["fit_images"] + summary["heldout_images"] < 90  # validation patients left out
    assert "own split" in summary["images_from"]
    assert load_model("refit").scope_detector.threshold == pytest.approx(summary["threshold"])
    # An explicit split file: only the files it lists are used.
    listed = sorted(str(p) for p in folder.rglob("*.jpeg"))[:60]
    split = tmp_path / "split.json"
    split.write_text(json.dumps({"train": [{"path": p, "label": "", "patient": ""} for p in listed]}))
    assert cli.main(["fit-scope", str(folder), "--model", "refit", "--split-json", str(split)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["fit_images"] + summary["heldout_images"] == 60


def test_fit_scope_reports_bad_arguments(home, tmp_path, capsys):
    assert cli.main(["fit-scope", str(tmp_path / "missing"), "--model", "x"]) == 2
    assert "folder not found" in capsys.readouterr().err
    assert cli.main(["fit-scope", str(tmp_path), "--model", "x", "--false-flag-rate", "2"]) == 2
    assert "false-flag-rate" in capsys.readouterr().err


def test_store_migration_keeps_old_rows_but_screens_them_again(tmp_path):
    from core.reading import store as store_mod
    from core.reading.schema import MIGRATIONS
    from core.screening.results import ScreenResult

    image = tmp_path / "a.png"
    cv2.imwrite(str(image), np.zeros((8, 8), np.uint8))
    db = tmp_path / "old.sqlite"
    conn = sqlite3.connect(db)
    conn.executescript(MIGRATIONS[0] + ";PRAGMA user_version=1;")
    stat = image.stat()
    conn.execute("INSERT INTO results VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                 (str(tmp_path), str(image.resolve()), "h", stat.st_size, stat.st_mtime_ns, "m", "1", 0.7, 0.5,
                  None, "png", "{}", None, None, None, "2026-01-01"))
    conn.commit()
    conn.close()
    with store_mod.ResultStore(db) as store:
        assert store.get_result(image, "h") is None  # stored before the scope check: screen again
        assert [r.probability for r in store.study_results(tmp_path, "h")] == [0.7]
        store.put_result(tmp_path, ScreenResult(str(image), 0.9, 0.5, "m", model_hash="h",
                                                scope="lateral view", scope_score=3.5))
        again = store.get_result(image, "h")
        assert (again.scope, again.scope_score, again.prediction) == ("lateral view", 3.5, "OUT_OF_SCOPE")


def test_a_saved_layout_check_keeps_its_own_classes(layout_check, chest_split):
    arrays = layout_check.to_arrays()
    fewer = {**arrays, "layout_coef": arrays["layout_coef"][:-1], "layout_intercept": arrays["layout_intercept"][:-1],
             "layout_classes": arrays["layout_classes"][:-1]}  # as saved by a version with one transform less
    older = LayoutCheck.from_arrays(fewer)
    assert older.classes == layout_check.classes[:-1]
    assert len(older.reasons(chest_split[2][:, ::-1, ::-1])) == len(chest_split[2])
    with pytest.raises(ValueError, match="not known"):
        LayoutCheck.from_arrays({**arrays, "layout_classes": np.array(["as_trained", "sideways"] + [""] * 5)})


@pytest.fixture(scope="module")
def class_conditional(tiny_detector, chest_split):
    """The tiny model's detector fitted again with the fit images' classes (chest_split's order)."""
    from core.models.scope import fit_scope_detector

    model, _ = tiny_detector
    fit, held, _ = chest_split
    order = np.random.default_rng(0).permutation(400)
    labels = np.array(["NORMAL"] * 200 + ["PNEUMONIA"] * 200)[order[:250]]
    return fit_scope_detector(model, fit, held, false_flag_rate=0.05, architecture="custom_cnn",
                              train_labels=labels)


def test_layer_gaussians_are_class_conditional_when_classes_are_known(tiny_detector, class_conditional,
                                                                     chest_split, tmp_path):
    from core.models.scope import ClassGaussians

    model, _ = tiny_detector
    detector = class_conditional
    assert [type(b).__name__ for b in detector.blocks] == ["ClassGaussians", "ClassGaussians", "GaussianBlock"]
    assert detector.summary()["gaussians_per_block"] == [2, 2, 1]
    unseen = chest_split[2]
    assert np.mean(detector.flags(_scores(model, detector, unseen))) <= 0.2
    for name, images in _out_of_scope_images(unseen).items():
        assert np.all(detector.flags(_scores(model, detector, images))), name
    # nearest class: never farther than the farthest one, and equal to one of them
    block = detector.blocks[0]
    from core.models.scope import compile_scope_forward

    features = compile_scope_forward(model, detector.layers)(unseen[:5].astype(np.float32) / 255.0)[1][0]
    each = np.stack([m.distance(features) for m in block.members])
    np.testing.assert_allclose(block.distance(features), each.min(axis=0))
    path = tmp_path / "cc.scope.npz"
    detector.save(path)
    again = ScopeDetector.load(path)
    assert isinstance(again.blocks[1], ClassGaussians) and len(again.blocks[1].members) == 2
    np.testing.assert_allclose(_scores(model, again, unseen[:8]), _scores(model, detector, unseen[:8]),
                               rtol=1e-5, atol=1e-5)


def test_too_few_images_of_a_class_fall_back_to_one_gaussian(chest_split):
    from core.models.scope_gaussians import MIN_CLASS_IMAGES, GaussianBlock

    rng = np.random.default_rng(0)
    fit, held = rng.normal(size=(200, 6)), rng.normal(size=(40, 6))
    labels = ["NORMAL"] * (MIN_CLASS_IMAGES - 1) + ["PNEUMONIA"] * (200 - MIN_CLASS_IMAGES + 1)
    detector = fit_from_features(["a"], [fit, fit[:, :4]], [held, held[:, :4]], 0.05, fit_labels=labels)
    assert all(isinstance(b, GaussianBlock) for b in detector.blocks)
    with pytest.raises(ValueError, match="labels for"):
        fit_from_features(["a"], [fit, fit[:, :4]], [held, held[:, :4]], 0.05, fit_labels=labels[:10])


def test_labels_with_unknown_classes_give_one_gaussian():
    from core.models.scope import GaussianBlock

    rng = np.random.default_rng(1)
    fit, held = rng.normal(size=(200, 6)), rng.normal(size=(40, 6))
    labels = ["NORMAL"] * 100 + ["PNEUMONIA"] * 99 + [""]  # a split file listed one path without its label
    detector = fit_from_features(["a"], [fit, fit[:, :4]], [held, held[:, :4]], 0.05, fit_labels=labels)
    assert all(isinstance(b, GaussianBlock) for b in detector.blocks)
