import csv
import json

import pytest

from conftest import copy_small_study
from core import cli
from core import paths
from core.cli.evaluate import JSON_KEYS
from core.models.architectures import build_model
from core.models.registry import ModelCard, save_model


@pytest.fixture()
def tiny_model(tmp_path, monkeypatch):
    monkeypatch.setenv("PNEUMOSCAN_HOME", str(tmp_path / "home"))
    card = ModelCard(name="tiny", architecture="custom_cnn", input_size=32, threshold=0.5,
                     validation_metrics={"auroc": 0.5, "sensitivity": 1.0, "specificity": 0.0})
    return save_model(build_model("custom_cnn", input_size=32), card, paths.user_models_dir())


def test_evaluate_prints_exactly_one_json_object_with_the_contract_keys(tiny_model, tmp_path, capsys, train_dir):
    folder = copy_small_study(tmp_path / "study", per_class=4)
    (folder / "PNEUMONIA" / "broken.jpeg").write_bytes(b"not a jpeg")
    out_csv = tmp_path / "rows.csv"
    code = cli.main(["evaluate", str(folder), "--model", "tiny", "--json", "--csv", str(out_csv)])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert tuple(result)[:len(JSON_KEYS)] == JSON_KEYS  # new keys come after
    assert result["n"] == 8 and result["errors"] == 1 and result["model"] == "tiny v1"
    assert result["tn"] + result["fp"] + result["fn"] + result["tp"] == 8
    rows = list(csv.DictReader(out_csv.open()))
    assert len(rows) == 9 and list(rows[0]) == ["path", "label", "probability", "prediction", "error"]
    assert [r for r in rows if r["error"]][0]["path"].endswith("broken.jpeg")


def test_evaluate_threshold_override_and_bad_arguments(tiny_model, tmp_path, capsys, train_dir):
    folder = copy_small_study(tmp_path / "study", per_class=3)
    assert cli.main(["evaluate", str(folder), "--model", "tiny", "--threshold", "0", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["threshold"] == 0 and result["sensitivity"] == 1.0 and result["specificity"] == 0.0
    assert cli.main(["evaluate", str(tmp_path / "missing"), "--json"]) == 2
    assert cli.main(["evaluate", str(folder), "--model", "nope", "--json"]) == 2
    assert "no model named" in capsys.readouterr().err


def test_models_lists_cards(tiny_model, capsys):
    assert cli.main(["models"]) == 0
    assert "tiny v1" in capsys.readouterr().out
    assert cli.main(["models", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert any(m["name"] == "tiny" and m["source"] == "user" and m["sha256"] for m in listed)
