"""Suite-wide safety: headless Qt, quiet TensorFlow, and a throw-away user
data folder so no test ever touches a real user's models or results store.

Real chest films come from one place, tests/chest_films.py: the full data when
it is present, else the small set the repository ships (never a skip).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ["QT_QPA_PLATFORM"] = "offscreen"  # the suite is headless wherever it runs
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("PNEUMOSCAN_NO_FIRST_RUN", "1")
os.environ["PNEUMOSCAN_HOME"] = tempfile.mkdtemp(prefix="pneumoscan-test-home-")

import chest_films  # noqa: E402  (after the environment above)
from chest_films import copy_small_study  # noqa: E402,F401  (tests import it from here)

REPO_ROOT = chest_films.REPO_ROOT
TRAIN_DIR = chest_films.TRAIN


def pytest_report_header(config):
    return chest_films.describe()


@pytest.fixture(scope="session")
def train_dir() -> Path:
    """The training folder: the full 5,216 films, or the 414 the repository ships."""
    return chest_films.TRAIN


@pytest.fixture(scope="session")
def train_counts() -> dict[str, int]:
    """What `train_dir` holds per class, as published (not counted from the folder)."""
    return dict(chest_films.TRAIN_COUNTS)


@pytest.fixture(scope="session")
def fullres_dir() -> Path:
    """Full-resolution films (~1000-2900 px a side), {NORMAL,PNEUMONIA}/*.jpeg."""
    return chest_films.FULLRES


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A user data folder of the test's own (models, store, settings, logs)."""
    home = tmp_path / "home"
    monkeypatch.setenv("PNEUMOSCAN_HOME", str(home))
    return home
