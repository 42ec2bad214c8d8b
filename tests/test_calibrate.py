"""Site calibration (`pneumoscan-cli calibrate`), confidence intervals, and the
evaluate command on calibrated probabilities.

Tiny models (32 px, random weights) and tiny PNGs: what is tested is the
choice of operating point, the refusal, and the registry entry, not accuracy.
"""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from calibration_helpers import NEGATIVES, POSITIVES, brightness_model, save_brightness_model, write_site_folder
from core import cli
from core import paths
from core.models.calibration import apply_temperature
from core.training.metrics import (binary_metrics, bootstrap_auroc_ci, bootstrap_aurocs, evidence_shortfall,
                          metrics_with_ci, negatives_needed, positives_needed, wilson_interval)


# ---------------------------------------------------------------- intervals
def test_wilson_interval_matches_published_values():
    # Newcombe (1998), Table I: 81/263 -> 0.2553-0.3662; 0/10 and 10/10 are not degenerate.
    low, high = wilson_interval(81, 263)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(0, 10)[1] == pytest.approx(0.2775, abs=1e-4)
    assert wilson_interval(10, 10)[0] == pytest.approx(0.7225, abs=1e-4)
    assert wilson_interval(0, 0) is None


def _scores(n_pos=150, n_neg=80, seed=1):
    rng = np.random.default_rng(seed)
    labels = np.r_[np.ones(n_pos), np.zeros(n_neg)].astype(int)
    scores = np.round(np.clip(labels * 0.35 + rng.random(len(labels)) * 0.65, 0, 1), 2)  # ties on purpose
    return labels, scores


def test_vectorised_bootstrap_equals_the_aurocs_of_the_resampled_sets():
    from sklearn.metrics import roc_auc_score

    labels, scores = _scores()
    fast = bootstrap_aurocs(labels, scores, resamples=20, seed=7)
    rng = np.random.default_rng(7)  # the same draws, made into explicit resampled sets
    pos, neg = scores[labels == 1], np.sort(scores[labels == 0])
    pos_counts = rng.multinomial(len(pos), np.full(len(pos), 1 / len(pos)), size=20)
    neg_counts = rng.multinomial(len(neg), np.full(len(neg), 1 / len(neg)), size=20)
    for b in range(20):
        p, n = np.repeat(pos, pos_counts[b]), np.repeat(neg, neg_counts[b])
        expected = roc_auc_score(np.r_[np.ones(len(p)), np.zeros(len(n))], np.r_[p, n])
        assert fast[b] == pytest.approx(expected, abs=1e-12)


def test_auroc_interval_is_seeded_and_brackets_the_estimate():
    from sklearn.metrics import roc_auc_score

    labels, scores = _scores()
    low, high = bootstrap_auroc_ci(labels, scores)
    assert low < roc_auc_score(labels, scores) < high and 0.02 < high - low < 0.2
    assert bootstrap_auroc_ci(labels, scores) == (low, high)  # seeded: reproducible
    small = bootstrap_auroc_ci(labels[::5], scores[::5])
    assert small[1] - small[0] > high - low  # fewer images, wider interval
    assert bootstrap_auroc_ci(np.ones(5), np.linspace(0, 1, 5)) is None


def test_metrics_with_ci_gives_wilson_intervals_from_the_confusion_counts():
    labels, scores = _scores()
    m = metrics_with_ci(labels, scores, 0.5)
    ci = m["ci95"]
    assert ci["sensitivity"] == list(wilson_interval(m["tp"], m["tp"] + m["fn"]))
    assert ci["specificity"] == list(wilson_interval(m["tn"], m["tn"] + m["fp"]))
    assert ci["accuracy"] == list(wilson_interval(m["tp"] + m["tn"], m["n"]))
    for key in ("sensitivity", "specificity", "accuracy", "precision", "npv", "auroc"):
        assert ci[key][0] <= m[key] <= ci[key][1]
    assert "Wilson" in m["ci_method"]


def test_how_many_cases_a_sensitivity_target_needs():
    # One miss must be allowed (0.97 -> at least 34) and the interval +/- 5 points.
    assert positives_needed(0.97) >= 34
    n = positives_needed(0.97)
    low, high = wilson_interval(0.97 * n, n)
    assert (high - low) / 2 <= 0.05
    low, high = wilson_interval(0.97 * (n - 1), n - 1)
    assert (high - low) / 2 > 0.05  # the smallest such n
    assert positives_needed(0.99) >= 100
    assert evidence_shortfall(positives_needed(0.97), negatives_needed(), 0.97) is None
    message = evidence_shortfall(18, 18, 0.97)
    assert f"{positives_needed(0.97) - 18} more pneumonia images" in message
    assert f"{negatives_needed() - 18} more normal images" in message


# ---------------------------------------------------------------- temperature choice
def test_temperature_is_refitted_only_where_it_helps():
    from core.training.site_calibration import choose_temperature

    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, 400)
    labels = (rng.random(400) < 1 / (1 + np.exp(-logits))).astype(int)
    groups = np.array([f"p{i}" for i in range(400)])
    calibrated = 1 / (1 + np.exp(-logits))
    overconfident = 1 / (1 + np.exp(-3 * logits))
    t, details = choose_temperature(labels, overconfident, groups)
    assert details["refit_used"] and t == pytest.approx(3.0, rel=0.25)
    assert details["cv_nll_refit"] < details["cv_nll_previous"]
    t, details = choose_temperature(labels, calibrated, groups)
    assert t == pytest.approx(1.0, abs=0.15)  # kept, or refitted to about 1


# ---------------------------------------------------------------- the command
@pytest.fixture()
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("PNEUMOSCAN_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture()
def tiny(home):
    return save_brightness_model(paths.user_models_dir())


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return write_site_folder(tmp_path_factory.mktemp("site"))


def _raw(entry, folder):
    from core.training.dataset import labelled_samples
    from core.screening.raw_scoring import raw_probabilities
    from core.models.registry import load_model

    samples = labelled_samples(folder)
    raw, errors = raw_probabilities(load_model(entry), [s.path for s in samples])
    assert not errors
    return np.array([s.target for s in samples]), raw


def test_calibrate_refuses_a_small_folder_and_says_how_many_more(tiny, tmp_path, capsys):
    folder = write_site_folder(tmp_path / "small", positives=20, negatives=30)
    before = sorted(p.name for p in paths.user_models_dir().iterdir())
    assert cli.main(["calibrate", str(folder), "--model", "tiny"]) == 2
    err = capsys.readouterr().err
    assert "refused" in err and f"{positives_needed(0.97) - 20} more pneumonia images" in err
    assert f"{negatives_needed() - 30} more normal images" in err
    assert sorted(p.name for p in paths.user_models_dir().iterdir()) == before  # nothing registered


def test_calibrate_registers_same_weights_with_a_threshold_on_the_calibrated_scale(tiny, site, capsys):
    from core.models.registry import find_model, sha256_of

    assert cli.main(["calibrate", str(site), "--model", "tiny", "--name", "tiny-ward"]) == 0
    out = capsys.readouterr().out
    assert "registered tiny-ward v1" in out and "--model tiny-ward" in out
    entry = find_model("tiny-ward")
    card = entry.card
    assert entry.keras_path.read_bytes() == tiny.keras_path.read_bytes()
    assert card.sha256 == tiny.card.sha256 == sha256_of(entry.keras_path)
    assert entry.keras_path != tiny.keras_path and tiny.keras_path.is_file()

    labels, raw = _raw(tiny, site)
    calibrated = apply_temperature(raw, card.temperature)
    called = calibrated >= card.threshold
    sensitivity = called[labels == 1].mean()
    guarded = 0.97 + 1 / POSITIVES  # one more missed pneumonia must still leave 97 %
    assert sensitivity >= guarded and (called[labels == 1].sum() - 1) / POSITIVES >= 0.97
    # The highest threshold that does so: the next positive score above it falls short.
    above = np.sort(calibrated[(labels == 1) & (calibrated > card.threshold + 1e-6)])
    if len(above):
        assert (calibrated[labels == 1] >= above[0]).mean() < guarded

    record = card.site_validation
    assert record["counts"] == {"NORMAL": NEGATIVES, "PNEUMONIA": POSITIVES}
    assert record["patients"] == {"NORMAL": (NEGATIVES + 1) // 2, "PNEUMONIA": POSITIVES // 2}
    assert record["folder"] == str(site) and "pneumoscan-cli calibrate" in record["command"]
    m = record["metrics"]
    expected = binary_metrics(labels, calibrated, card.threshold)
    assert (m["tp"], m["fn"], m["tn"], m["fp"]) == (expected["tp"], expected["fn"], expected["tn"], expected["fp"])
    assert m["ci95"]["sensitivity"] == list(wilson_interval(m["tp"], m["tp"] + m["fn"]))
    assert m["ci95"]["auroc"][0] <= m["auroc"] <= m["ci95"]["auroc"][1]
    assert record["cross_validated"]["folds"] == 5 and record["cross_validated"]["ci95"]["sensitivity"]
    for key in ("ece_before", "ece_after", "brier_before", "brier_after"):
        assert 0.0 <= record[key] <= 1.0
    assert card.calibration["refit_used"] == (card.temperature != 1.0)
    # Temperature scaling never reorders images.
    assert m["auroc"] == pytest.approx(record["base_metrics"]["auroc"])


def test_calibrated_entry_is_selectable_and_evaluate_uses_its_temperature(tiny, site, capsys, tmp_path):
    from core.models.registry import find_model

    assert cli.main(["calibrate", str(site), "--model", "tiny"]) == 0  # default name "<model>-site"
    capsys.readouterr()
    first = find_model("tiny-site")
    assert first.label == "tiny-site v1"
    rows = tmp_path / "rows.csv"
    assert cli.main(["evaluate", str(site), "--model", "tiny-site", "--json", "--csv", str(rows)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["model"] == "tiny-site v1" and result["threshold"] == first.card.threshold
    assert result["temperature"] == first.card.temperature
    assert result["sensitivity"] >= 0.97  # the operating point holds on the calibration set
    assert {"ece", "brier", "ci95", "ci_method"} <= result.keys()
    assert result["ci95"]["sensitivity"][0] <= result["sensitivity"] <= result["ci95"]["sensitivity"][1]
    # CSV probabilities are the calibrated ones.
    labels, raw = _raw(tiny, site)
    import csv

    with open(rows, newline="") as fh:
        shown = {r["path"]: float(r["probability"]) for r in csv.DictReader(fh)}
    from core.training.dataset import labelled_samples

    expected = apply_temperature(raw, first.card.temperature)
    for sample, p in zip(labelled_samples(site), expected):
        assert shown[sample.path] == pytest.approx(p, abs=2e-6)

    # Calibrating again adds a version and leaves the first one untouched.
    before = first.keras_path.stat().st_mtime_ns, first.card_path.read_text()
    assert cli.main(["calibrate", str(site), "--model", "tiny", "--target-sensitivity", "0.975"]) == 0
    assert find_model("tiny-site").label == "tiny-site v2"
    assert (first.keras_path.stat().st_mtime_ns, first.card_path.read_text()) == before
    assert find_model("tiny-site v2").card.site_validation["target_sensitivity"] == 0.975


def test_evaluate_applies_a_cards_temperature(home, site, capsys):
    from core.models.registry import ModelCard, save_model
    card = ModelCard(name="warm", architecture="tiny_cnn", input_size=32, threshold=0.5, temperature=2.5)
    entry = save_model(brightness_model(weight=30.0, bias=-15.0), card, paths.user_models_dir())
    assert cli.main(["evaluate", str(site), "--model", "warm", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    labels, raw = _raw(entry, site)
    expected = binary_metrics(labels, apply_temperature(raw, 2.5), 0.5)
    assert (result["tp"], result["fp"]) == (expected["tp"], expected["fp"])
    assert result["temperature"] == 2.5
    assert result["brier"] == pytest.approx(np.mean((apply_temperature(raw, 2.5) - labels) ** 2))


def test_without_model_calibrate_starts_from_the_default(tiny, site, capsys):
    from core.models import registry

    registry.set_default_model("tiny")  # the user's choice of default (a preference file in home)
    assert cli.main(["calibrate", str(site)]) == 0
    assert registry.find_model("tiny-site").card.site_validation["base_model"] == "tiny v1"


def test_copy_takes_sidecar_files_along_and_never_overwrites(tiny, tmp_path):
    from core.models.registry import ModelError, register_copy

    sidecar = tiny.keras_path.with_name(tiny.keras_path.stem + ".scope.npz")
    sidecar.write_bytes(b"detector arrays")
    card = dataclasses.replace(tiny.card, name="copy", version=1,
                               scope_detector={"file": sidecar.name, "threshold": 3.0})
    entry = register_copy(tiny, card)
    copied = entry.keras_path.with_name("copy-v1.scope.npz")
    assert copied.read_bytes() == b"detector arrays"
    assert entry.card.scope_detector == {"file": "copy-v1.scope.npz", "threshold": 3.0}
    before = entry.keras_path.read_bytes(), entry.card_path.read_text()
    with pytest.raises(ModelError, match="already exists"):
        register_copy(tiny, dataclasses.replace(tiny.card, name="copy", version=1))
    assert (entry.keras_path.read_bytes(), entry.card_path.read_text()) == before


def test_site_validation_record_measures_a_model_as_it_is(home, site):
    from core.models.registry import ModelCard, save_model
    from core.training.site_calibration import site_validation_record

    card = ModelCard(name="warm", architecture="tiny_cnn", input_size=32, threshold=0.6, temperature=2.0)
    entry = save_model(brightness_model(), card, paths.user_models_dir())
    record = site_validation_record(entry, site)
    labels, raw = _raw(entry, site)
    calibrated = apply_temperature(raw, 2.0)
    m = record["metrics"]
    expected = binary_metrics(labels, calibrated, 0.6)
    assert (m["tp"], m["fp"], m["threshold"]) == (expected["tp"], expected["fp"], 0.6)
    assert record["counts"] == {"NORMAL": NEGATIVES, "PNEUMONIA": POSITIVES}
    assert record["brier"] == pytest.approx(np.mean((calibrated - labels) ** 2))
    assert record["brier_uncalibrated"] == pytest.approx(np.mean((raw - labels) ** 2))
    assert m["ci95"]["specificity"] == list(wilson_interval(m["tn"], m["tn"] + m["fp"]))
