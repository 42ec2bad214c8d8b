"""Ensembles of cross-validated recipes: scored on the same folds as the mean of their members."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import copy_small_study
from core.training.cross_validation import CVConfig, _train_config, result_path, run_protocol
from core.training.cv_ensemble import averaged_forward, check_members, ensemble_name, run_ensemble
from core.training.cv_summary import summarise


def test_a_seed_recipe_changes_only_the_seed(tmp_path):
    config = CVConfig(folder="f", out_dir=str(tmp_path), epochs=6, input_size=96, seed=0)
    base, other = _train_config(config, "baseline", tmp_path), _train_config(config, "baseline_seed1", tmp_path)
    assert (base.seed, other.seed) == (0, 1)
    assert {k: v for k, v in vars(base).items() if k not in ("seed", "name")} == \
        {k: v for k, v in vars(other).items() if k not in ("seed", "name")}


def test_members_that_cannot_be_averaged_are_refused():
    assert check_members(["baseline", "lung_focus"]) == "full"
    for members, reason in ((["baseline"], "two or more"), (["baseline", "baseline"], "two or more"),
                            (["baseline", "swa"], "unknown recipe"), (["baseline", "thorax"], "input views")):
        with pytest.raises(ValueError, match=reason):
            check_members(members)


def test_the_ensemble_is_the_mean_of_its_members():
    forward = averaged_forward([lambda b: np.full(len(b), 0.2), lambda b: np.full((len(b), 1), 0.6)])
    assert np.allclose(forward(np.zeros((3, 4, 4, 1))), 0.4)


def test_an_ensemble_is_scored_on_the_folds_its_members_finished(tmp_path):
    from core.training.batches import forward_for, predict_cache
    from core.training.cv_measures import scored_model
    from core.training.dataset import labelled_samples
    from core.training.metrics import auroc
    from test_training_cross_validation import make_folds_of

    folder = copy_small_study(tmp_path / "data", per_class=12)
    config = CVConfig(folder=str(folder), out_dir=str(tmp_path / "cv"), folds=2, epochs=1, input_size=32,
                      batch_size=8)
    members = ["baseline", "baseline_seed1"]
    run_protocol(config, members, only_folds=[0], log=lambda m: None)
    said = []
    written = run_ensemble(config, members, log=said.append)
    assert written == [result_path(config, ensemble_name(members), 0)]
    assert any("fold 1: not scored" in m for m in said)  # its members have not trained fold 1
    scored = json.loads(written[0].read_text())
    assert scored["recipe"] == "ensemble-baseline+baseline_seed1" and scored["members"] == members

    # The same AUROC from the members' own predictions, averaged here.
    samples = sorted(labelled_samples(config.folder), key=lambda s: s.path)
    held = make_folds_of(config)[0]
    cache = np.load(Path(config.out_dir) / "cache_32.npy")[held]
    probs = np.mean([predict_cache(forward_for(scored_model(Path(config.out_dir) / "runs" / f"{m}-fold0", m)), cache)
                     for m in members], axis=0)
    assert scored["auroc"] == pytest.approx(auroc(np.array([samples[i].target for i in held]), probs))
    assert run_ensemble(config, members, log=lambda m: None) == []  # scored once
    assert "ensemble-baseline+baseline_seed1" in summarise(config.out_dir)["paired_gain_vs_baseline"]


def test_the_bench_refuses_members_it_cannot_average_with_one_json_error(tmp_path, capsys):
    import importlib.util

    script = Path(__file__).resolve().parents[1] / "bench" / "cross_validate.py"
    spec = importlib.util.spec_from_file_location("cross_validate_bench", script)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    protocol = {"folder": str(tmp_path), "out_dir": str(tmp_path), "folds": 2, "epochs": 1, "input_size": 32,
                "batch_size": 8, "seed": 0}
    (tmp_path / "protocol.json").write_text(json.dumps(protocol))
    assert bench.main(["ensemble", "--out", str(tmp_path), "--members", "baseline", "thorax"]) == 2
    assert "input views" in json.loads(capsys.readouterr().out)["error"]
