"""Suite-wide safety: headless Qt, quiet TensorFlow, and a throw-away user
data folder so no test ever touches a real user's models or results store."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("PNEUMOSCAN_NO_FIRST_RUN", "1")
os.environ["PNEUMOSCAN_HOME"] = tempfile.mkdtemp(prefix="pneumoscan-test-home-")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
TRAIN_DIR = SHARED_DATA / "chest_xray" / "train"


@pytest.fixture(scope="session")
def train_dir() -> Path:
    if not TRAIN_DIR.is_dir():
        pytest.skip(f"shared data not found at {TRAIN_DIR}")
    return TRAIN_DIR


def copy_small_study(dest: Path, per_class: int, offset: int = 0) -> Path:
    """Copy `per_class` real images per class into dest/{NORMAL,PNEUMONIA}."""
    import shutil

    for label in ("NORMAL", "PNEUMONIA"):
        (dest / label).mkdir(parents=True, exist_ok=True)
        for src in sorted((TRAIN_DIR / label).iterdir())[offset:offset + per_class]:
            shutil.copy(src, dest / label / src.name)
    return dest
