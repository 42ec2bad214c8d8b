"""`pneumoscan-cli info PATH`: the loader's view as one JSON object."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import conftest_loader_helpers as h
from core import cli

REPO = Path(__file__).resolve().parents[1]


def test_info_jpeg(capsys):
    path = h.small_source()
    assert cli.main(["info", str(path)]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == {
        "path": str(path), "kind": "jpeg", "shape": [224, 224],
        "meta": {"width": 224, "height": 224, "channels": 3, "bit_depth": 8},
    }
    assert err == ""


def test_info_dicom(capsys, tmp_path):
    v = h.read_grey(h.small_source())
    path = h.save(h.ten_bit_plain(v), tmp_path / "IM000001", preamble=False, implicit=True)
    assert cli.main(["info", str(path)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["kind"] == "dicom" and report["shape"] == [224, 224]
    assert report["meta"]["Modality"] == "DX"
    assert report["meta"]["BitsStored"] == 10
    assert report["meta"]["TransferSyntax"] == "Implicit VR Little Endian"


def test_info_error(capsys, tmp_path):
    (tmp_path / "empty.dcm").write_bytes(b"")
    assert cli.main(["info", str(tmp_path / "empty.dcm")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == "error: empty file\n"


def test_info_as_a_process(tmp_path):
    path = tmp_path / "Ünïcødé_胸部" / "image.jpeg"
    path.parent.mkdir()
    path.write_bytes(h.large_source().read_bytes())
    done = subprocess.run([sys.executable, "-m", "core.cli", "info", str(path)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["path"] == str(path) and report["kind"] == "jpeg"
    missing = subprocess.run([sys.executable, "-m", "core.cli", "info", str(tmp_path / "no.jpeg")],
                             cwd=REPO, capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and missing.stderr.strip() == "error: file not found"
