"""`pneumoscan-cli export-dicom`: a study's results as SR + secondary capture files."""
from __future__ import annotations

import pydicom
import pytest
from pydicom.uid import generate_uid

from core import cli
from core.pacs.results_dicom import read_sr
from engine_models import write_images
from orthanc_server import free_port
from pacs_fixtures import tiny_model_entry  # noqa: F401
from pacs_helpers import make_dataset, write_dataset


@pytest.fixture
def study(tmp_path):
    uid = generate_uid()
    folder = tmp_path / "study"
    for i in range(2):
        write_dataset(make_dataset(uid, seed=i, instance=i + 1), folder / f"IM{i}")  # DICOM without a suffix
    write_images(folder, 1)  # a PNG: no DICOM study to join
    return folder


def test_export_writes_one_sr_and_one_capture_per_dicom_image(home, study, tmp_path, tiny_model_entry, capsys):  # noqa: F811
    out = tmp_path / "out"
    code = cli.main(["export-dicom", str(study), "--out", str(out), "--model", str(tiny_model_entry.keras_path)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "skipped" in captured.err and "img_000.png" in captured.err
    written = sorted(out.glob("*/*.dcm"))
    assert [p.name.split("_")[0] for p in written].count("SR") == 2
    assert [p.name.split("_")[0] for p in written].count("SC") == 2
    sources = {str(pydicom.dcmread(p).SOPInstanceUID) for p in study.glob("IM*")}
    referenced = {read_sr(pydicom.dcmread(p)).source_sop_uid for p in written if p.name.startswith("SR_")}
    assert referenced == sources
    assert {p.parent.name for p in written} == {str(pydicom.dcmread(study / "IM0").StudyInstanceUID)}


def test_export_needs_a_target_and_a_valid_node(home, study, tiny_model_entry, capsys):  # noqa: F811
    assert cli.main(["export-dicom", str(study)]) == 2
    assert "--out" in capsys.readouterr().err
    assert cli.main(["export-dicom", str(study), "--send-to", "no-port-here"]) == 2
    assert "AET@HOST:PORT" in capsys.readouterr().err


def test_send_to_a_node_that_is_down_fails_clearly(home, study, tiny_model_entry, capsys):  # noqa: F811
    node = f"NOBODY@127.0.0.1:{free_port()}"
    code = cli.main(["export-dicom", str(study), "--send-to", node, "--model", str(tiny_model_entry.keras_path)])
    assert code == 1
    assert f"cannot send to {node}" in capsys.readouterr().err
