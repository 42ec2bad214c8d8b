"""`pneumoscan --smoke-test`: the real entry point in a fresh process."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from desktop_helpers import install_model, make_study, save_tiny_model


REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def smoke_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("smoke_home")
    models = tmp_path_factory.mktemp("smoke_model")
    save_tiny_model(models)
    install_model(models, home)
    return home


def run_smoke(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PNEUMOSCAN_HOME=str(home), QT_QPA_PLATFORM="offscreen",
               PNEUMOSCAN_NO_FIRST_RUN="1", TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, "-m", "desktop.app", "--smoke-test", *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300)


def test_smoke_test_screens_a_folder_and_prints_json(smoke_home, tmp_path):
    study = make_study(tmp_path)
    done = run_smoke(smoke_home, str(study))
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(report) == {"window_shown_s", "screened", "errors", "device"}
    assert report["screened"] == 7 and report["errors"] == 1
    assert 0 < report["window_shown_s"] < 30
    assert report["device"].startswith(("CPU", "GPU"))
    # The smoke run leaves the user's store and settings alone.
    assert not (smoke_home / "results.sqlite3").exists()


def test_smoke_test_fails_clearly_on_a_missing_folder(smoke_home, tmp_path):
    done = run_smoke(smoke_home, str(tmp_path / "missing"))
    assert done.returncode != 0
    assert "not found" in done.stderr


def test_smoke_test_fails_when_nothing_can_be_screened(smoke_home, tmp_path):
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.png").write_bytes(b"not a png")
    done = run_smoke(smoke_home, str(tmp_path / "junk"))
    assert done.returncode == 1
    assert json.loads(done.stdout.strip().splitlines()[-1])["screened"] == 0
    assert "nothing could be screened" in done.stderr
