"""Model manager dialog: lists every model; renames and deletes only the user's own.

Cards with placeholder model files: nothing is loaded, so no TensorFlow here.
"""
from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QInputDialog, QMessageBox

from core import paths
from core.models.shipped import SHIPPED_MODELS
from desktop.model_manager import COLUMNS, ModelManagerDialog, open_model_manager
from wizard_helpers import StubMainWindow, write_fake_model


# The stand-in shipped model takes the name and version the built-in table expects.
SHIPPED_VERSION = SHIPPED_MODELS["mobilenet_v2.keras"]["version"]
SHIPPED_LABEL = f"mobilenet_v2 v{SHIPPED_VERSION}"


@pytest.fixture
def models(tmp_path, monkeypatch):
    """One shipped model (in a temporary shipped folder) and two user models."""
    home = tmp_path / "home"
    monkeypatch.setenv("PNEUMOSCAN_HOME", str(home))
    shipped = tmp_path / "shipped"
    monkeypatch.setattr(paths, "shipped_models_dir", lambda: shipped)
    write_fake_model(shipped, "mobilenet_v2", version=SHIPPED_VERSION, stem="mobilenet_v2",
                     architecture="mobilenet_v2")
    write_fake_model(home / "models", "ward-model", version=1, auroc=0.873)
    write_fake_model(home / "models", "ward-model", version=2, auroc=None)
    return home


def row_of(dialog, label):
    return next(i for i, e in enumerate(dialog.model.entries) if e.label == label)


def cells(dialog, row):
    model = dialog.model
    return [model.data(model.index(row, c)) for c in range(len(COLUMNS))]


def test_lists_every_model_with_its_details(qtbot, models):
    dialog = ModelManagerDialog()
    qtbot.addWidget(dialog)
    assert dialog.model.rowCount() == 3 and dialog.model.columnCount() == len(COLUMNS)
    assert [dialog.model.headerData(c, Qt.Orientation.Horizontal) for c in range(len(COLUMNS))] == list(COLUMNS)
    assert cells(dialog, row_of(dialog, SHIPPED_LABEL)) == [
        "mobilenet_v2", str(SHIPPED_VERSION), "shipped", "mobilenet_v2", "2024-05-01 10:00:00", "0.42", "0.900"]
    assert cells(dialog, row_of(dialog, "ward-model v1"))[2] == "user"
    assert cells(dialog, row_of(dialog, "ward-model v1"))[6] == "0.873"
    assert cells(dialog, row_of(dialog, "ward-model v2"))[6] == ""  # no AUROC recorded


def test_shipped_models_cannot_be_renamed_or_deleted(qtbot, models):
    dialog = ModelManagerDialog()
    qtbot.addWidget(dialog)
    dialog.table.selectRow(row_of(dialog, SHIPPED_LABEL))
    assert not dialog.rename_button.isEnabled() and not dialog.delete_button.isEnabled()
    assert "cannot be renamed or deleted" in dialog.note_label.text()
    shipped = dialog.selected_entry()
    assert not dialog.delete(shipped)  # even when asked directly
    assert not dialog.rename(shipped, "mine now")
    assert shipped.keras_path.is_file() and dialog.model.rowCount() == 3
    dialog.table.selectRow(row_of(dialog, "ward-model v1"))
    assert dialog.rename_button.isEnabled() and dialog.delete_button.isEnabled()


def test_rename_a_user_model(qtbot, models, monkeypatch):
    from core.models.registry import find_model, list_models

    window = StubMainWindow()
    qtbot.addWidget(window)
    dialog = open_model_manager(window)
    dialog.table.selectRow(row_of(dialog, "ward-model v1"))
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("ICU model", True))
    with qtbot.waitSignal(dialog.modelsChanged):
        dialog.rename_button.click()
    assert sorted(e.label for e in list_models()) == ["ICU model v1", SHIPPED_LABEL, "ward-model v2"]
    assert find_model("ICU model v1").keras_path.name == "ward-model-v1.keras"  # the file keeps its hash
    assert dialog.selected_entry().label == "ICU model v1"
    assert window.refreshed == 1  # the main window's model list follows

    dialog.table.selectRow(row_of(dialog, "ward-model v2"))
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("bad/name", True))
    dialog.rename_button.click()
    assert "Not renamed" in dialog.note_label.text()
    assert find_model("ward-model v2").card.name == "ward-model"
    dialog.close()


def test_rename_to_an_existing_name_and_version_is_refused(qtbot, models):
    """Two models called "name vN" would make the model list and the CLI ambiguous."""
    from core.models.registry import list_models

    dialog = ModelManagerDialog()
    qtbot.addWidget(dialog)
    entry = dialog.model.entries[row_of(dialog, "ward-model v1")]
    write_fake_model(models / "models", "ICU model", version=1)
    dialog.reload()
    assert not dialog.rename(entry, "ICU model")
    assert "already exists" in dialog.note_label.text()
    assert sum(e.label == "ICU model v1" for e in list_models()) == 1


def test_delete_asks_first_and_removes_only_after_yes(qtbot, models, monkeypatch):
    from core.models.registry import list_models

    dialog = ModelManagerDialog(active_label="ward-model v2")
    qtbot.addWidget(dialog)
    dialog.table.selectRow(row_of(dialog, "ward-model v2"))
    asked = []

    def answer(reply):
        def question(parent, title, text, *args, **kwargs):
            asked.append(text)
            return reply
        return question

    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.No))
    dialog.delete_button.click()
    assert "cannot be undone" in asked[0] and "in use" in asked[0]
    assert dialog.model.rowCount() == 3

    monkeypatch.setattr(QMessageBox, "question", answer(QMessageBox.StandardButton.Yes))
    with qtbot.waitSignal(dialog.modelsChanged):
        dialog.delete_button.click()
    assert sorted(e.label for e in list_models()) == [SHIPPED_LABEL, "ward-model v1"]
    assert not (models / "models" / "ward-model-v2.keras").exists()
    assert not (models / "models" / "ward-model-v2.json").exists()
    assert dialog.model.rowCount() == 2
