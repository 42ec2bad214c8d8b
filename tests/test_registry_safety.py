"""Registry safety: built-in hashes for shipped models, names checked before
they reach a path, reserved file names, only .keras, and a default model that
changes only when the user says so."""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from core import cli

from core import paths
from core.models.architectures import build_model
from core.models.registry import (
    ModelCard,
    ModelError,
    entry_from_file,
    find_model,
    list_models,
    load_model,
    rename_model,
    save_model,
    set_default_model,
    sha256_of,
    validate_name,
)
from core.models.shipped import SHIPPED_MODELS

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny():
    return build_model("custom_cnn", input_size=32)


def card(name="tiny", version=1):
    return ModelCard(name=name, architecture="custom_cnn", version=version, input_size=32)


def test_built_in_table_matches_the_shipped_models():
    """Fails until packaging/hash_shipped_models.py is rerun after models/ changes."""
    sys.path.insert(0, str(REPO / "packaging"))
    try:
        import hash_shipped_models
    finally:
        sys.path.pop(0)
    on_disk = {p.name: sha256_of(p) for p in (REPO / "models").glob("*.keras")}
    assert {name: entry["sha256"] for name, entry in SHIPPED_MODELS.items()} == on_disk
    assert hash_shipped_models.table_source(REPO / "models") == (REPO / "core" / "models" / "shipped.py").read_text()


def test_tampered_shipped_model_with_a_matching_card_is_refused(home, tmp_path, monkeypatch):
    shipped = Path(shutil.copytree(REPO / "models", tmp_path / "models"))
    monkeypatch.setattr(paths, "shipped_models_dir", lambda: shipped)
    keras_path = shipped / "custom_cnn.keras"
    with open(keras_path, "ab") as handle:
        handle.write(b"\0")
    card_path = keras_path.with_suffix(".json")
    data = json.loads(card_path.read_text())
    data["sha256"] = sha256_of(keras_path)  # whoever swapped the file also fixed the card
    card_path.write_text(json.dumps(data))
    entry = find_model("custom_cnn")
    assert entry.shipped
    with pytest.raises(ModelError, match="hash built into PneumoScan"):
        load_model(entry)


def _shipped_default() -> tuple[str, int]:
    """The shipped default model's name and version (from the built-in table)."""
    from core.models.registry import DEFAULT_MODEL

    return DEFAULT_MODEL, SHIPPED_MODELS[f"{DEFAULT_MODEL}.keras"]["version"]


def test_no_user_entry_can_pose_as_a_shipped_model(home, tiny):
    name, version = _shipped_default()
    with pytest.raises(ModelError, match="is a shipped model"):
        save_model(tiny, card(name, version))
    # A card dropped into the user folder by hand is not listed either.
    entry = save_model(tiny, card("impostor", 1))
    data = json.loads(entry.card_path.read_text())
    data.update(name=name, version=version)
    entry.card_path.write_text(json.dumps(data))
    assert [e.shipped for e in list_models() if e.label == f"{name} v{version}"] == [True]
    assert find_model(f"{name} v{version}").shipped
    other = save_model(tiny, card("x", version))
    with pytest.raises(ModelError, match="is a shipped model"):
        rename_model(other, name)


@pytest.mark.parametrize("bad", ["../x", "a/b", "a\\b", "", "   ", ".hidden", "-flag", "x..y", "name v2",
                                 "CON", "nul.txt", "a" * 65, "semi;colon", "tab\there"])
def test_bad_names_never_reach_a_path(bad, home, tiny):
    with pytest.raises(ModelError):
        validate_name(bad)
    with pytest.raises(ModelError):
        save_model(tiny, card(bad))
    assert not any(home.rglob("*.keras"))


@pytest.mark.parametrize("good", ["tiny", "ICU model", "ward-model_2 (fine-tune)", "Modèle+1", "v2"])
def test_good_names(good):
    assert validate_name(f" {good} ") == good


def test_train_refuses_a_bad_name_before_training(home, tmp_path, capsys):
    folder = tmp_path / "data"
    folder.mkdir()
    assert cli.main(["train", str(folder), "--name", "../x"]) == 2
    assert "--name" in capsys.readouterr().err


def test_rename_then_save_under_the_old_name_overwrites_nothing(home, tiny):
    first = save_model(tiny, card("ward", 1))
    rename_model(first, "renamed")
    second = save_model(tiny, card("ward", 1))  # the old label is free again
    assert second.keras_path != first.keras_path
    assert first.keras_path.is_file() and first.card_path.is_file()
    assert {e.label for e in list_models() if not e.shipped} == {"renamed v1", "ward v1"}
    assert load_model("renamed v1").card.name == "renamed"


def test_a_stray_file_with_the_target_name_is_kept(home, tiny):
    stray = paths.user_models_dir() / "tiny-v1.keras"
    stray.write_bytes(b"someone else's file")
    entry = save_model(tiny, card("tiny", 1))
    assert entry.keras_path.name == "tiny-v1-2.keras"
    assert stray.read_bytes() == b"someone else's file"
    with pytest.raises(ModelError, match="already exists"):
        save_model(tiny, card("tiny", 1))


@pytest.mark.parametrize("suffix", [".h5", ".hdf5", ".pb"])
def test_only_keras_files_are_accepted(suffix, home, tmp_path):
    path = tmp_path / f"model{suffix}"
    path.write_bytes(b"\x89HDF\r\n\x1a\n")
    with pytest.raises(ModelError, match="only .keras"):
        find_model(str(path))
    with pytest.raises(ModelError, match="only .keras"):
        entry_from_file(path)


def test_a_non_archive_named_keras_is_refused(home, tmp_path):
    path = tmp_path / "legacy.keras"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)  # an HDF5 file renamed
    path.with_suffix(".json").write_text(json.dumps(
        {"name": "legacy", "architecture": "custom_cnn", "sha256": sha256_of(path)}))
    with pytest.raises(ModelError, match="not a Keras v3 archive"):
        load_model(str(path))


def test_default_changes_only_when_the_user_says_so(home, tiny, capsys):
    name, v = _shipped_default()
    shipped, v1, v2 = f"{name} v{v}", f"{name} v{v + 1}", f"{name} v{v + 2}"
    assert find_model(None).label == shipped
    save_model(tiny, card(name, v + 1))  # e.g. a fine-tune saved under the current name
    assert find_model(None).label == shipped
    assert find_model(name).label == v1  # asked for by name: newest

    assert cli.main(["models", "--set-default", v1]) == 0
    assert f"default model: {v1}" in capsys.readouterr().out
    save_model(tiny, card(name, v + 2))
    assert find_model(None).label == v1  # pinned to the chosen version

    assert cli.main(["models", "--set-default", "nope"]) == 2
    assert "no model named" in capsys.readouterr().err
    assert find_model(None).label == v1

    assert cli.main(["models", "--reset-default"]) == 0
    assert find_model(None).label == shipped
    set_default_model(v2)
    find_model(v2).card_path.unlink()  # deleted: back to the shipped default
    assert find_model(None).label == shipped


def test_an_intact_shipped_model_loads_with_the_built_in_hash(home):
    loaded = load_model("custom_cnn")
    assert loaded.entry.shipped
    assert loaded.sha256 == SHIPPED_MODELS["custom_cnn.keras"]["sha256"]
