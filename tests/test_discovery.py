"""Discovery: every file below a study is screened, an error row, or skipped with a reason."""
from __future__ import annotations

import csv
import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from pydicom.data import get_testdata_file

import conftest_loader_helpers as h
from core import cli
from core.imaging.discovery import NOT_UTF8_FILE, NOT_UTF8_FOLDER, discover, discover_study
from core.imaging.loader import load_image
from engine_models import save_tiny_model


@pytest.fixture(scope="module")
def v() -> np.ndarray:
    return h.read_grey(h.small_source())


def all_files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


def accounted(found) -> set[Path]:
    return set(found.images) | {path for path, _reason in found.skipped}


def tiny_alpha(tmp_path) -> Path:
    """pydicom's TINY_ALPHA media folder (a DICOMDIR and 50 images, no suffixes)."""
    source = Path(get_testdata_file("DICOMDIR", read=False)).parent / "TINY_ALPHA"
    return Path(shutil.copytree(source, tmp_path / "cd"))


@pytest.mark.parametrize("implicit", [True, False], ids=["implicit VR", "explicit VR"])
def test_raw_dicom_without_preamble_or_extension_is_found(implicit, v, tmp_path):
    for i in range(36):
        h.save(h.mono2_8bit(v), tmp_path / f"IMG{i:04d}.dcm")
    raw = [h.save(h.mono2_8bit(v), tmp_path / "raw" / f"{i:08d}", preamble=False, implicit=implicit)
           for i in range(4)]
    assert all(p.read_bytes()[128:132] != b"DICM" for p in raw)
    found = discover_study(tmp_path)
    assert len(found.images) == 40 and set(raw) <= set(found.images)
    assert found.skipped == []
    assert load_image(raw[0]).kind == "dicom"


def test_every_file_is_accounted_for_with_a_reason(v, tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "readme").write_text("plain text, no extension")
    (tmp_path / "series.001").write_bytes(h.small_source().read_bytes())  # a JPEG, odd suffix
    (tmp_path / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache" / "x.jpeg").write_bytes(h.small_source().read_bytes())
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "broken.dcm").write_bytes(b"")  # known suffix: the loader's error row says why
    h.save(h.mono2_8bit(v), tmp_path / "a.dcm")

    found = discover_study(tmp_path)

    assert found.images == sorted([tmp_path / "a.dcm", tmp_path / "broken.dcm", tmp_path / "series.001"])
    reasons = dict(found.skipped)
    assert reasons[tmp_path / "notes.txt"] == "not an image (.txt file)"
    assert reasons[tmp_path / "readme"] == "not an image (no image or DICOM content found)"
    assert reasons[tmp_path / ".DS_Store"] == "hidden file"
    assert reasons[tmp_path / ".cache"] == "hidden folder (not searched)"
    assert reasons[tmp_path / "empty"] == "empty file"
    assert all_files(tmp_path) - {tmp_path / ".cache" / "x.jpeg"} == accounted(found) - {tmp_path / ".cache"}
    assert discover(tmp_path) == found.images  # the old API keeps working


def test_dicomdir_images_are_screened_once_and_the_index_is_not_an_image(tmp_path):
    folder = tiny_alpha(tmp_path)
    found = discover_study(folder)
    assert len(found.images) == 50 and len(set(found.images)) == 50
    assert folder / "DICOMDIR" not in found.images
    reasons = dict(found.skipped)
    assert "its 50 referenced files are screened" in reasons[folder / "DICOMDIR"]
    assert found.index_errors == []
    assert all_files(folder) == accounted(found)


def test_dicomdir_reference_to_a_missing_file_becomes_an_error_row(tmp_path):
    folder = tiny_alpha(tmp_path)
    missing = next(iter(sorted(folder.rglob("IM00000A"))))
    missing.unlink()
    found = discover_study(folder)
    assert missing in found.images  # listed in the index: its row says "file not found"
    with pytest.raises(Exception, match="file not found"):
        load_image(missing)


def test_damaged_dicomdir_is_reported_and_the_folder_still_walked(tmp_path):
    folder = tiny_alpha(tmp_path)
    index = folder / "DICOMDIR"
    index.write_bytes(index.read_bytes()[:600])
    found = discover_study(folder)
    assert [path for path, _ in found.index_errors] == [index]
    assert len(found.images) == 50  # the walk still finds the images
    assert index not in found.images


def test_cli_summarises_skipped_files(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PNEUMOSCAN_HOME", str(tmp_path / "home"))
    model = save_tiny_model(tmp_path / "models").keras_path
    study = tmp_path / "study"
    study.mkdir()
    shutil.copy(h.small_source(), study / "a.jpeg")
    (study / "notes.txt").write_text("x")
    code = cli.main(["screen", str(study), "--model", str(model)])
    captured = capsys.readouterr()
    assert code == 0
    rows = list(csv.reader(io.StringIO(captured.out)))
    assert len(rows) == 2  # header + the one image; the summary is not in the CSV
    assert "skipped 1 file(s) that are not images:" in captured.err
    assert f"{study / 'notes.txt'}: not an image (.txt file)" in captured.err


def test_cli_names_skipped_files_when_nothing_is_an_image(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PNEUMOSCAN_HOME", str(tmp_path / "home"))
    (tmp_path / "notes.txt").write_text("x")
    code = cli.main(["screen", str(tmp_path)])
    assert code == 2
    assert "no image files found" in capsys.readouterr().err


def test_raw_dicom_without_sop_class_is_found(v, tmp_path):
    ds = h.mono2_8bit(v)
    del ds.SOPClassUID, ds.SOPInstanceUID  # older CR exports: pixels and size only
    raw = h.save(ds, tmp_path / "CR00001", preamble=False, implicit=True)
    assert discover_study(tmp_path).images == [raw]
    assert load_image(raw).pixels.shape == v.shape


def _latin1_study(tmp_path) -> Path:
    """A study with a file and a folder whose names are Latin-1 bytes, not UTF-8 (as old CD
    exports and Windows copies on Linux have): Python gives them surrogate characters."""
    study = tmp_path / "study"
    study.mkdir()
    shutil.copy(h.small_source(), study / "a.jpeg")
    try:
        shutil.copy(h.small_source(), os.fsdecode(os.fsencode(study) + b"/r\xf6ntgen.jpeg"))
        folder = os.fsencode(study) + b"/d\xe9cembre"
        os.mkdir(folder)
        shutil.copy(h.small_source(), os.fsdecode(folder + b"/b.jpeg"))
    except (OSError, UnicodeError):
        pytest.skip("this file system refuses names that are not UTF-8")
    return study


def test_a_name_that_is_not_utf8_is_skipped_with_its_reason(tmp_path):
    study = _latin1_study(tmp_path)
    found = discover_study(study)
    assert found.images == [study / "a.jpeg"]
    reasons = {os.fsencode(path).rpartition(b"/")[2]: reason for path, reason in found.skipped}
    assert reasons == {b"r\xf6ntgen.jpeg": NOT_UTF8_FILE, b"d\xe9cembre": NOT_UTF8_FOLDER}


def test_screen_and_report_account_for_such_a_name_without_a_crash(tmp_path, monkeypatch, capsys):
    study = _latin1_study(tmp_path)
    monkeypatch.setenv("PNEUMOSCAN_HOME", str(tmp_path / "home"))
    model = save_tiny_model(tmp_path / "models")
    assert cli.main(["screen", str(study), "--model", str(model.keras_path)]) == 0
    captured = capsys.readouterr()
    assert len(list(csv.reader(io.StringIO(captured.out)))) == 2  # header + a.jpeg
    assert "r\\xf6ntgen.jpeg: " + NOT_UTF8_FILE in captured.err  # named, escaped
    pdf, table = tmp_path / "r.pdf", tmp_path / "r.csv"
    assert cli.main(["report", str(study), "--model", str(model.keras_path), "--pdf", str(pdf),
                     "--csv", str(table)]) == 0, capsys.readouterr().err
    rows = {row["file"]: row for row in csv.DictReader(table.open(encoding="utf-8"))}
    assert rows["r\\xf6ntgen.jpeg"]["reason"] == NOT_UTF8_FILE
    assert rows["d\\xe9cembre"]["reason"] == NOT_UTF8_FOLDER
    assert rows["a.jpeg"]["status"] == "screened"
    assert pdf.read_bytes()[:5] == b"%PDF-"


def test_the_window_opens_such_a_study_and_names_the_file(tmp_path, qtbot, monkeypatch):
    """The desktop's study scan and its notice: the name shown escaped, the other images screened."""
    from core.reading.study_files import scan_study

    study = _latin1_study(tmp_path)
    scanned = scan_study(study)
    assert [Path(p).name for p in scanned.files] == ["a.jpeg"]
    assert "r\\xf6ntgen.jpeg (" + NOT_UTF8_FILE + ")" in scanned.warnings[0]
    scanned.warnings[0].encode("utf-8")  # shown in Qt and the log as it is
