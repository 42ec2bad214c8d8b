"""`pneumoscan-cli screen`: CSV contract, store reuse, heatmaps, exit codes."""
from __future__ import annotations

import csv
import io

import cv2
import pytest

from core import cli
from core.screening.screener import Screener
from core.reading.store import ResultStore
from engine_models import save_tiny_model, write_images

HEADER = ["path", "probability", "prediction", "threshold", "model", "error", "scope"]


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("models")).keras_path


@pytest.fixture
def study(tmp_path):
    folder = tmp_path / "study"
    write_images(folder / "NORMAL", 3, seed=1)
    write_images(folder / "PNEUMONIA", 3, seed=2)  # same file names as NORMAL/
    (folder / "PNEUMONIA" / "broken.jpg").write_bytes(b"\xff\xd8\xff not really")
    return folder


def screen(capsys, *args) -> tuple[int, list[list[str]], str]:
    code = cli.main(["screen", *map(str, args)])
    captured = capsys.readouterr()
    return code, list(csv.reader(io.StringIO(captured.out))), captured.err


def test_csv_has_one_row_per_file(home, study, model_file, capsys):
    code, rows, _ = screen(capsys, study, "--model", model_file, "--batch-size", 4)
    assert code == 0
    assert rows[0] == HEADER
    body = {row[0]: row for row in rows[1:]}
    assert len(body) == 7
    broken = body[str(study / "PNEUMONIA" / "broken.jpg")]
    assert broken[1:3] == ["", ""] and broken[5] and broken[4] == "tiny v1"
    for path, row in body.items():
        if row[5]:
            continue
        probability, prediction, threshold = float(row[1]), row[2], float(row[3])
        assert prediction == ("PNEUMONIA" if probability >= threshold else "NORMAL")
        assert threshold == 0.5


def test_results_go_to_the_store_and_are_reused(home, study, model_file, capsys, monkeypatch):
    screened = []
    original = Screener.screen

    def counting(self, paths, cancel=None):
        paths = list(paths)
        screened.append(paths)
        return original(self, paths, cancel)

    monkeypatch.setattr(Screener, "screen", counting)
    out = study.parent / "results.csv"
    assert screen(capsys, study, "--model", model_file, "--out", out)[0] == 0
    first = list(csv.reader(out.open()))
    assert len(screened[0]) == 7

    with ResultStore(home / "results.sqlite3") as store:
        assert len(store.study_results(study, store_hash(model_file))) == 7

    changed = study / "NORMAL" / "img_000.png"
    write_images(changed.parent, 1, seed=9)  # rewrites img_000.png with other pixels
    assert screen(capsys, study, "--model", model_file, "--out", out)[0] == 0
    # unchanged good files come from the store; the changed and the broken file are screened again
    assert sorted(map(str, screened[1])) == sorted(str(p.resolve()) for p in (changed, study / "PNEUMONIA" / "broken.jpg"))
    second = list(csv.reader(out.open()))
    assert [r[0] for r in second] == [r[0] for r in first]
    assert [r for r in second if r[0] != str(changed)] == [r for r in first if r[0] != str(changed)]


def store_hash(model_file) -> str:
    from core.models.registry import entry_from_file

    return entry_from_file(model_file).card.sha256


def test_threshold_relabels(home, study, model_file, capsys):
    code, rows, _ = screen(capsys, study, "--model", model_file, "--threshold", 0)
    assert code == 0
    assert {row[2] for row in rows[1:] if not row[5]} == {"PNEUMONIA"}
    assert {row[3] for row in rows[1:]} == {"0"}


def test_heatmaps_mirror_the_tree(home, study, model_file, capsys, tmp_path):
    heat = tmp_path / "heat"
    code, rows, _ = screen(capsys, study, "--model", model_file, "--heatmaps", heat)
    assert code == 0
    written = sorted(p.relative_to(heat).as_posix() for p in heat.rglob("*.png"))
    assert written == [f"{label}/img_{i:03d}.png.png" for label in ("NORMAL", "PNEUMONIA") for i in range(3)]
    image = cv2.imread(str(heat / "NORMAL" / "img_000.png.png"))
    assert image.shape == (48, 56, 3)


@pytest.mark.parametrize("args, message", [
    (["{missing}"], "folder not found"),
    (["{study}", "--threshold", "1.5"], "--threshold"),
    (["{study}", "--model", "no-such-model"], "no model"),
    (["{study}", "--model", "{tmp}/nothing.keras"], "not found"),
    (["{study}", "--batch-size", "0"], "--batch-size"),
    (["{study}", "--out", "{tmp}/no/such/dir/out.csv"], "--out"),
    (["{empty}"], "no image files"),
    (["{bad}"], "none of the 2 files"),
])
def test_usage_errors_exit_2(home, study, model_file, tmp_path, capsys, args, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad").mkdir()
    for name in ("a.png", "b.jpg"):
        (tmp_path / "bad" / name).write_bytes(b"garbage")
    names = dict(missing=tmp_path / "missing", study=study, tmp=tmp_path, empty=tmp_path / "empty", bad=tmp_path / "bad")
    args = [a.format(**names) for a in args]
    if "--model" not in args:
        args += ["--model", str(model_file)]
    code, _, err = screen(capsys, *args)
    assert code == 2
    assert message in err


def test_model_by_registered_name(home, study, capsys):
    from core import paths

    save_tiny_model(paths.user_models_dir(), name="tiny-registered")
    code, rows, _ = screen(capsys, study, "--model", "tiny-registered")
    assert code == 0 and {row[4] for row in rows[1:]} == {"tiny-registered v1"}


def test_heatmaps_need_the_gradcam_layer(home, study, tmp_path, capsys):
    odd = save_tiny_model(tmp_path / "odd", name="odd", conv_name="features").keras_path
    code, _, err = screen(capsys, study, "--model", odd, "--heatmaps", tmp_path / "heat")
    assert code == 2 and "last_conv" in err
    assert screen(capsys, study, "--model", odd)[0] == 0  # fine without heatmaps


def test_progress_line(capsys):
    from core.cli.screen import Progress

    progress = Progress(3, enabled=True)
    for _ in range(3):
        progress.step()
    progress.finish()
    err = capsys.readouterr().err
    assert err.startswith("\r") and "3/3 images" in err and "images/s" in err and "ETA" in err
    assert err.endswith("\n")
    quiet = Progress(3, enabled=False)
    quiet.step()
    quiet.finish()
    assert capsys.readouterr().err == ""


def test_help_lists_screen(capsys):
    with pytest.raises(SystemExit):
        cli.main(["screen", "--help"])
    assert "--heatmaps" in capsys.readouterr().out
