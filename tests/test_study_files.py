"""One definition of a labelled folder (core.imaging.labelled) and of a study's files
(core.reading.study_files): labels.csv (with patients) or class sub-folders."""
from __future__ import annotations

import pytest

from core.imaging.labelled import labelled_folder
from core.reading.study_files import scan_study
from core.screening.results import NEGATIVE, POSITIVE
from core.training.dataset import labelled_samples


def _touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_truth_from_sub_folders_and_from_labels_csv(tmp_path):
    study = tmp_path / "s"
    a = _touch(study / "NORMAL" / "a.png")
    b = _touch(study / "PNEUMONIA" / "b.png")
    c = _touch(study / "c.png")
    found = scan_study(study)
    assert found.truth == {str(a.resolve()): NEGATIVE, str(b.resolve()): POSITIVE}
    # Opening a class folder itself still labels its files.
    assert scan_study(study / "PNEUMONIA").truth == {str(b.resolve()): POSITIVE}

    (study / "labels.csv").write_text("path,label,patient\nc.png,pneumonia,P1\nNORMAL/a.png,PNEUMONIA,\n"
                                      "missing,??,\n")
    found = scan_study(study)
    assert found.truth == {str(c.resolve()): POSITIVE, str(a.resolve()): POSITIVE}
    assert found.patients == {str(c.resolve()): "P1"} and len(found.warnings) == 1


def test_training_evaluate_and_the_window_read_the_same_labelled_images(tmp_path):
    study = tmp_path / "s"
    _touch(study / "x.png")
    _touch(study / "y.png")
    _touch(study / "other" / "z.png")
    (study / "labels.csv").write_text("path,label,patient\nx.png,normal,P1\ny.png,1,P1\n")
    window = scan_study(study)
    samples = labelled_samples(study)  # training (and calibrate)
    assert {s.path: s.label for s in samples} == window.truth == dict(labelled_folder(study).labelled)
    assert {s.patient for s in samples} == {"label:P1"}


def test_missing_study_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="study folder not found"):
        scan_study(tmp_path / "nope")


def test_files_that_are_not_images_are_listed_with_reasons(tmp_path):
    study = tmp_path / "s"
    _touch(study / "a.png")
    (study / "notes.txt").write_text("x")
    (study / "labels.csv").write_text("path,label\na.png,normal\n")
    found = scan_study(study)
    assert found.skipped == [(str(study.resolve() / "notes.txt"), "not an image (.txt file)")]
    assert found.warnings == ["Skipped 1 file(s) that are not images: notes.txt (not an image (.txt file))"]
    assert found.files_found == 2
