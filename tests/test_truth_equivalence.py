"""The window's study model and `pneumoscan-cli evaluate` give the same n and the same
metrics on the same labelled folder: class sub-folders, and a labels.csv folder."""
from __future__ import annotations

import json

import pytest

from core import cli, paths
from engine_models import save_tiny_model, write_images


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    monkeypatch.setenv("PNEUMOSCAN_HOME", str(tmp_path / "home"))
    return save_tiny_model(paths.user_models_dir(), threshold=0.5)


def sub_folder_study(root):
    write_images(root / "NORMAL", 5, seed=1)
    write_images(root / "PNEUMONIA", 5, seed=2)
    write_images(root / "unlabelled", 2, seed=3)  # neither side counts these
    (root / "PNEUMONIA" / "broken.png").write_bytes(b"not a png")
    return root


def labels_csv_study(root):
    files = write_images(root / "films", 10, seed=4)
    lines = ["path,label,patient"] + [f"films/{p.name},{'PNEUMONIA' if i % 2 else 'NORMAL'},P{i // 2}"
                                       for i, p in enumerate(files)]
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    write_images(root / "NORMAL", 2, seed=5)  # class folders are ignored when labels.csv is there
    return root


def window_counts(folder, entry, store_path):
    """What the window's study job does: scan, screen through the store, show in a ReadingSession."""
    from core.models.registry import load_model
    from core.reading.session import ReadingSession
    from core.reading.store import ResultStore
    from core.reading.study_files import scan_study
    from core.reading.study_screening import screen_study

    study = scan_study(folder)
    with ResultStore(store_path) as store:
        results = [item.result for item in screen_study(study.files, load_model(entry), store, gradcam=False,
                                                        study_folder=study.folder)]
    session = ReadingSession(threshold=entry.card.threshold)
    session.open_study(study.folder, study.files, study.truth, study.patients)
    session.add_results(results)
    return session.counts()


@pytest.mark.parametrize("make", [sub_folder_study, labels_csv_study], ids=["sub-folders", "labels.csv"])
def test_window_and_evaluate_agree(tiny, tmp_path, capsys, make):
    folder = make(tmp_path / "study")
    assert cli.main(["evaluate", str(folder), "--model", "tiny", "--json"]) == 0
    evaluated = json.loads(capsys.readouterr().out)
    counts = window_counts(folder, tiny, tmp_path / "store.sqlite3")
    cells = counts["cells"]
    assert evaluated["n"] == sum(cells.values()) == 10
    assert (evaluated["tp"], evaluated["fn"], evaluated["fp"], evaluated["tn"]) == (
        cells["TP"], cells["FN"], cells["FP"], cells["TN"])
    assert cells["TP"] + cells["FN"] == 5  # the five pneumonia films, on both sides
    assert evaluated["sensitivity"] == pytest.approx(cells["TP"] / 5)
    negatives = cells["TN"] + cells["FP"]
    assert evaluated["specificity"] == pytest.approx(cells["TN"] / negatives)
    assert evaluated["errors"] == counts["errors"]
