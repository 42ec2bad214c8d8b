"""CSV exports (CLI and GUI) never hand a spreadsheet a formula from outside text."""
from __future__ import annotations

import csv
import io
import shutil

import pytest

import conftest_loader_helpers as h
from core import cli
from core.csvsafe import neutral_row, neutralise
from core.reading.report import CSV_COLUMNS, ReportRow, write_csv
from engine_models import save_tiny_model


@pytest.mark.parametrize("text", ["=1+1", "+SUM(A1)", "-2+3", "@cmd", "\tx", "\r=x",
                                  '=HYPERLINK("http://x","y")'])
def test_formula_starts_are_neutralised(text):
    assert neutralise(text) == "'" + text


@pytest.mark.parametrize("value", ["0.500000", "-0.5", "+1e-3", "plain.png", "", "a=b", 0.5, -1, None])
def test_numbers_and_plain_text_are_unchanged(value):
    assert neutralise(value) == value


def test_rows_of_both_kinds():
    assert neutral_row(("=x", "1")) == ["'=x", "1"]
    assert neutral_row({"a": "@x", "b": 2}) == {"a": "'@x", "b": 2}


def test_cli_csv_neutralises_file_names(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PNEUMOSCAN_HOME", str(tmp_path / "home"))
    model = save_tiny_model(tmp_path / "models").keras_path
    study = tmp_path / "study"
    study.mkdir()
    shutil.copy(h.small_source(), study / "=1+1.jpeg")
    monkeypatch.chdir(study)
    assert cli.main(["screen", ".", "--model", str(model)]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[1][0] == "'=1+1.jpeg"
    assert float(rows[1][1]) >= 0  # the probability stays a number


def test_gui_export_neutralises_file_names_and_dicom_text(tmp_path):
    row = ReportRow(file="=cmd|'/C calc'!A0.png", path="/s/x.png", patient="@SUM(1+1)", study="s",
                    section="All other images", status="screened", study_date="20240101", probability=0.25,
                    threshold=0.5, prediction="NORMAL", model="m", model_version="1", model_hash="h")
    path = write_csv([row], tmp_path / "out.csv")
    record = dict(zip(CSV_COLUMNS, list(csv.reader(path.open()))[1]))
    assert record["file"] == "'=cmd|'/C calc'!A0.png"
    assert record["patient_id"] == "'@SUM(1+1)"
    assert record["probability"] == "0.250000"


def test_dicom_text_is_shown_as_plain_text(qtbot):
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QLabel

    from desktop.details_panel import DetailsPanel

    panel = DetailsPanel()
    qtbot.addWidget(panel)
    panel._set_meta({"PatientID": "<b>bold</b><img src='x'>"})
    labels = [w for w in panel.meta_box.findChildren(QLabel) if "bold" in w.text()]
    assert labels and all(w.textFormat() == Qt.TextFormat.PlainText for w in labels)
    assert all(f.textFormat() == Qt.TextFormat.PlainText for f in panel.fields.values())
