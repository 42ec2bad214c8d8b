"""This PneumoScan's version, for the record each stored result carries.

pyproject.toml is the one source: read from it in a source checkout (so an editable
install never reports a stale version), else from the installed package's metadata
(the PyInstaller bundle copies it: build_installer.spec).
"""
from __future__ import annotations

import functools
import tomllib
from importlib import metadata

from core.paths import bundle_root

UNKNOWN = "unknown"


@functools.cache
def software_version() -> str:
    pyproject = bundle_root() / "pyproject.toml"
    try:
        return str(tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"])
    except (OSError, ValueError, KeyError):
        pass
    try:
        return metadata.version("pneumoscan")
    except metadata.PackageNotFoundError:
        return UNKNOWN
