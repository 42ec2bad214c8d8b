"""Recipe selection by cross-validation: grouped folds, shifted copies, the summary's rule, resuming."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import copy_small_study
from cv_helpers import cut_after_one_epoch
from core.training.acquisition_shift import SHIFTS, TTA_VIEWS, shifted
from core.training.cross_validation import CVConfig, make_folds, result_path, run_protocol
from core.training.cv_summary import markdown_table, summarise, t_interval
from core.training.dataset import Sample


def _samples(patients: int = 60):
    out = []
    for p in range(patients):
        label = "PNEUMONIA" if p % 3 else "NORMAL"
        for image in range(1 + p % 3):  # one to three images per patient
            out.append(Sample(f"/x/{label}/p{p}_{image}.jpeg", label, f"p{p}"))
    return out


def test_folds_keep_each_patient_on_one_side_and_cover_everything():
    samples = _samples()
    folds = make_folds(samples, 3, seed=0)
    seen = np.concatenate(folds)
    assert sorted(seen.tolist()) == list(range(len(samples)))
    for held in folds:
        held_patients = {samples[i].patient for i in held}
        rest = {s.patient for i, s in enumerate(samples) if i not in set(held.tolist())}
        assert not held_patients & rest
        assert {samples[i].label for i in held} == {"NORMAL", "PNEUMONIA"}


def test_shifts_are_deterministic_and_keep_the_shape():
    cache = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 1), dtype=np.uint8)
    for name in SHIFTS:
        a, b = shifted(cache, name), shifted(cache, name)
        assert a.shape == cache.shape and a.dtype == np.uint8 and (a == b).all()
        assert not (a == cache).all(), name  # each one changes the film
    assert (shifted(cache, "identity", TTA_VIEWS) == cache).all()
    with pytest.raises(ValueError):
        shifted(cache, "nope")


def test_a_gain_counts_only_beyond_fold_noise(tmp_path):
    assert t_interval([0.9]) == {"mean": 0.9, "ci95": None, "n": 1}
    results = tmp_path / "results"
    results.mkdir()
    gains = {"steady": [0.02, 0.021, 0.019], "noisy": [0.05, -0.04, 0.01]}
    for fold in range(3):
        base = {"recipe": "baseline", "fold": fold, "auroc": 0.9}
        (results / f"baseline-fold{fold}.json").write_text(json.dumps(base))
        for recipe, values in gains.items():
            row = {"recipe": recipe, "fold": fold, "auroc": 0.9 + values[fold]}
            (results / f"{recipe}-fold{fold}.json").write_text(json.dumps(row))
    summary = summarise(tmp_path)
    assert summary["paired_gain_vs_baseline"]["steady"]["auroc"]["beats_baseline"] is True
    assert summary["paired_gain_vs_baseline"]["noisy"]["auroc"]["beats_baseline"] is False
    assert summary["recipes"]["baseline"]["auroc"]["per_fold"] == [0.9, 0.9, 0.9]
    table = markdown_table(summary)
    assert "| baseline | 0.900 (0.900-0.900) [0.900 / 0.900 / 0.900] |" in table
    assert "| steady - baseline (paired) | 0.020 (0.018-0.022) |" in table


def test_test_time_augmentation_is_judged_against_the_same_models_plain_score(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    for fold, (plain, tta) in enumerate([(0.90, 0.91), (0.92, 0.931), (0.95, 0.959)]):
        row = {"recipe": "baseline", "fold": fold, "auroc": plain, "tta_auroc": tta,
               "viral_vs_normal_auroc": plain, "tta_viral_vs_normal_auroc": plain + (-0.01, 0.01, 0.0)[fold]}
        (results / f"baseline-fold{fold}.json").write_text(json.dumps(row))
    gain = summarise(tmp_path)["tta_gain_within_recipe"]["baseline"]
    assert gain["auroc"]["mean"] == pytest.approx(0.01) and gain["auroc"]["above_zero"] is True
    assert gain["viral_vs_normal_auroc"]["mean"] == pytest.approx(0.0)
    assert gain["viral_vs_normal_auroc"]["above_zero"] is False


@pytest.mark.slow
def test_a_finished_fold_is_not_rerun_and_an_interrupted_one_resumes(tmp_path, monkeypatch):
    folder = copy_small_study(tmp_path / "data", per_class=18)
    config = CVConfig(folder=str(folder), out_dir=str(tmp_path / "cv"), folds=2, epochs=2, input_size=32,
                      batch_size=8)
    written = run_protocol(config, ["baseline"], only_folds=[0], log=lambda m: None)
    assert written == [result_path(config, "baseline", 0)]
    first = json.loads(written[0].read_text())
    assert first["epochs"] == 2 and 0.0 <= first["auroc"] <= 1.0
    assert set(first["shifted_auroc"]) == set(SHIFTS)

    # Fold 1 is cut after its first epoch (as a session's end would); the rerun finishes it
    # from the checkpoint and leaves fold 0 alone.
    cut_after_one_epoch(monkeypatch, config, ["baseline"])
    said = []
    written = run_protocol(config, ["baseline"], log=said.append)
    assert written == [result_path(config, "baseline", 1)]
    assert any("resuming after epoch 1" in m for m in said)
    assert json.loads(written[0].read_text())["epochs"] == 2
    assert json.loads(result_path(config, "baseline", 0).read_text()) == first


def test_the_weight_averaging_and_thorax_candidates_run_on_the_same_folds(tmp_path):
    folder = copy_small_study(tmp_path / "data", per_class=12)
    config = CVConfig(folder=str(folder), out_dir=str(tmp_path / "cv"), folds=2, epochs=1, input_size=32,
                      batch_size=8)
    said = []
    written = run_protocol(config, ["ema", "thorax"], only_folds=[0], log=said.append)
    assert written == [result_path(config, "ema", 0), result_path(config, "thorax", 0)]
    for path in written:
        assert 0.0 <= json.loads(path.read_text())["auroc"] <= 1.0
    assert all((tmp_path / "cv" / "runs" / f"{r}-fold0" / "final.keras").is_file() for r in ("ema", "thorax"))
    thorax = np.load(tmp_path / "cv" / "cache_32_thorax.npy")
    assert thorax.shape[1:3] == (32, 32) and (tmp_path / "cv" / "cache_32.npy").is_file()  # each view its own
    assert any("(thorax)" in m for m in said)


def test_an_unknown_recipe_is_refused_with_the_known_ones(tmp_path):
    config = CVConfig(folder=str(tmp_path), out_dir=str(tmp_path / "cv"))
    with pytest.raises(ValueError, match="known: baseline, mixup, ema, thorax"):
        run_protocol(config, ["swa"], log=lambda m: None)


def test_where_the_heat_sits_is_measured_per_finished_fold(tmp_path):
    from core.training.cv_heatmaps import heat_path, run_heat, summarise_heat

    folder = copy_small_study(tmp_path / "data", per_class=12)
    config = CVConfig(folder=str(folder), out_dir=str(tmp_path / "cv"), folds=2, epochs=1, input_size=32,
                      batch_size=8)
    run_protocol(config, ["baseline"], only_folds=[0], log=lambda m: None)
    assert run_heat(config, ["baseline", "ema"], log=lambda m: None) == [heat_path(config, "baseline", 0)]
    measured = json.loads(heat_path(config, "baseline", 0).read_text())
    assert measured["n"] == len(make_folds_of(config)[0]) and measured["view"] == "full"
    for key in ("mean_share_outside", "peak_outside_rate", "uniform_map_share_outside"):
        assert measured[key] is None or 0.0 <= measured[key] <= 1.0
    assert run_heat(config, ["baseline"], log=lambda m: None) == []  # measured once
    assert summarise_heat(config.out_dir)["baseline"]["folds"] == [0]


def make_folds_of(config):
    from core.training.cross_validation import load_or_make_folds
    from core.training.dataset import labelled_samples

    return load_or_make_folds(config, sorted(labelled_samples(config.folder), key=lambda s: s.path))


def _protocol(tmp_path, **changes) -> CVConfig:
    folder = copy_small_study(tmp_path / "data", per_class=6)
    return CVConfig(folder=str(folder), out_dir=str(tmp_path / "cv"), folds=2, epochs=2, input_size=32,
                    batch_size=8, **changes)


def test_a_protocol_records_its_film_preparation_and_refuses_a_resume_with_other_settings(tmp_path):
    from core.imaging.preprocessing import FILM_PREPARATION

    config = _protocol(tmp_path)
    assert run_protocol(config, ["baseline"], only_folds=[], log=lambda m: None) == []
    recorded = json.loads((tmp_path / "cv" / "protocol.json").read_text())
    assert recorded["film_preparation"] == FILM_PREPARATION
    for change, named in (({"epochs": 6}, "epochs 2 (asked: 6)"), ({"input_size": 64}, "input_size 32"),
                          ({"film_preparation": 1}, f"film_preparation {FILM_PREPARATION} (asked: 1)")):
        with pytest.raises(ValueError, match=r"holds a cross-validation run with .*" + named.replace("(", r"\(")
                           .replace(")", r"\)")):
            run_protocol(CVConfig(**{**config.__dict__, **change}), ["baseline"], log=lambda m: None)
    assert json.loads((tmp_path / "cv" / "protocol.json").read_text()) == recorded  # untouched


def test_a_protocol_from_before_the_record_keeps_its_cache_and_never_mixes_preparations(tmp_path):
    config = _protocol(tmp_path)
    out = tmp_path / "cv"
    out.mkdir()
    legacy = {k: v for k, v in config.__dict__.items() if k != "film_preparation"}
    (out / "protocol.json").write_text(json.dumps(legacy))  # as 0.4.0-0.4.1 wrote it
    # Its cache is gone: decoding now would prepare films otherwise than its finished folds.
    with pytest.raises(ValueError, match="must be decoded again.*not recorded.*choose another --out"):
        run_protocol(config, ["baseline"], log=lambda m: None)
    assert json.loads((out / "protocol.json").read_text())["film_preparation"] is None  # never guessed
