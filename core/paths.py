"""Where PneumoScan finds its own files and keeps the user's.

One helper for every location so the frozen (PyInstaller) app, an editable
install and the tests all agree. Never build paths from the current directory.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

APP_NAME = "PneumoScan"


def bundle_root() -> Path:
    """Folder holding `models/` and `resources/`: the repo, or the frozen bundle."""
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        return Path(frozen_root)
    return Path(__file__).resolve().parent.parent


def shipped_models_dir() -> Path:
    return bundle_root() / "models"


def resources_dir() -> Path:
    return bundle_root() / "resources"


def sample_study_dir() -> Path:
    return resources_dir() / "sample_study"


def user_data_dir() -> Path:
    """Per-user data folder (results store, user models, training runs).

    Matches Qt's QStandardPaths.AppDataLocation layout without importing Qt,
    because `core` must stay Qt-free. PNEUMOSCAN_HOME overrides it (tests, CI,
    portable installs).
    """
    override = os.environ.get("PNEUMOSCAN_HOME")
    if override:
        path = Path(override)
    elif sys.platform == "win32":
        path = Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming")) / APP_NAME
    elif sys.platform == "darwin":
        path = Path.home() / "Library" / "Application Support" / APP_NAME
    else:
        base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        path = Path(base) / APP_NAME
    path.mkdir(parents=True, exist_ok=True)
    return path


def user_models_dir() -> Path:
    path = user_data_dir() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def training_runs_dir() -> Path:
    path = user_data_dir() / "runs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def store_path() -> Path:
    return user_data_dir() / "results.sqlite3"
