"""User preferences, kept in QSettings.

The settings file lives in the PneumoScan user-data folder (an INI file) rather
than the platform registry, so PNEUMOSCAN_HOME isolates tests, CI and portable
installs exactly like it isolates the results store and user models.
"""
from __future__ import annotations

import os

from PySide6.QtCore import QSettings

from core.paths import user_data_dir

NO_FIRST_RUN_ENV = "PNEUMOSCAN_NO_FIRST_RUN"

_LAST_STUDY = "study/last_folder"
_FIRST_RUN_SEEN = "notice/research_use_seen"
_MODEL = "screening/model"
_HEATMAP_VISIBLE = "viewer/heatmap_visible"
_HEATMAP_OPACITY = "viewer/heatmap_opacity"
_GEOMETRY = "window/geometry"
_SPLITTER = "window/splitter"
_READER = "reading/reader_name"


def _to_bool(value, default: bool) -> bool:
    # INI files give strings back ("true"/"false").
    if value is None:
        return default
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _text_setting(key: str) -> property:
    """A text preference: None when unset."""
    def get(self) -> str | None:
        value = self._qs.value(key)
        return str(value) if value else None

    def put(self, value: str) -> None:
        self._set(key, str(value))

    return property(get, put)


def _raw_setting(key: str) -> property:
    """A value kept as Qt gives it (window state bytes)."""
    return property(lambda self: self._qs.value(key), lambda self, value: self._set(key, value))


class AppSettings:
    """Typed accessors over one QSettings file; nothing else touches the keys."""

    def __init__(self, persist: bool = True):
        # persist=False (smoke test) reads the user's preferences but never writes.
        self._persist = persist
        self._qs = QSettings(str(user_data_dir() / "settings.ini"), QSettings.Format.IniFormat)

    def _set(self, key: str, value) -> None:
        if self._persist:
            self._qs.setValue(key, value)

    def sync(self) -> None:
        if self._persist:
            self._qs.sync()

    last_study = _text_setting(_LAST_STUDY)  # the folder opened last
    model_name = _text_setting(_MODEL)  # the model the user picked

    @property
    def reader_name(self) -> str:
        """Who is reading: recorded with every decision and sign-off."""
        value = self._qs.value(_READER)
        return str(value).strip() if value else ""

    @reader_name.setter
    def reader_name(self, name: str) -> None:
        self._set(_READER, str(name).strip())

    @property
    def heatmap_visible(self) -> bool:
        return _to_bool(self._qs.value(_HEATMAP_VISIBLE), True)

    @heatmap_visible.setter
    def heatmap_visible(self, visible: bool) -> None:
        self._set(_HEATMAP_VISIBLE, bool(visible))

    @property
    def heatmap_opacity(self) -> float:
        try:
            return min(1.0, max(0.0, float(self._qs.value(_HEATMAP_OPACITY, 0.45))))
        except (TypeError, ValueError):
            return 0.45

    @heatmap_opacity.setter
    def heatmap_opacity(self, opacity: float) -> None:
        self._set(_HEATMAP_OPACITY, float(opacity))

    geometry = _raw_setting(_GEOMETRY)  # Qt's saveGeometry() bytes
    splitter_state = _raw_setting(_SPLITTER)

    def research_notice_due(self, suppressed: bool = False) -> bool:
        """True once per user: the first-launch 'research use only' notice."""
        if suppressed or os.environ.get(NO_FIRST_RUN_ENV) == "1":
            return False
        return not _to_bool(self._qs.value(_FIRST_RUN_SEEN), False)

    def mark_research_notice_seen(self) -> None:
        self._set(_FIRST_RUN_SEEN, True)
        self.sync()
