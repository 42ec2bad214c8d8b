"""Which model the main window offers and picks: `ModelChoice` owns the selector's list.

It lists the registry on a worker, keeps (or picks) the model in use and says when the
model in use changes (`changed(entry, reader_chose)`); the window decides what follows
(threshold, Inbox, re-opening the study). It writes nothing of the window's.
"""
from __future__ import annotations

from PySide6.QtCore import QObject, Qt, Signal

from core.models.notes import model_tooltip


def list_entries():
    """(entries, default) from the registry (file work: run on a worker)."""
    from core.models.registry import find_model, list_models

    entries = list_models()
    try:
        default = find_model(None)
    except Exception:
        default = entries[0] if entries else None
    return entries, default


def fill_combo(combo, entries) -> None:
    combo.clear()
    for entry in entries:
        card = entry.card
        combo.addItem(card.label + ("" if entry.shipped else "  (yours)"))
        combo.setItemData(combo.count() - 1, model_tooltip(entry), Qt.ItemDataRole.ToolTipRole)
    if not entries:
        combo.setPlaceholderText("no model installed")


def entry_by_label(entries, label: str | None):
    # A user's model wins over a shipped one of the same name and version (as in the registry).
    matches = [e for e in entries if label and e.card.label == label]
    return max(matches, key=lambda e: not e.shipped) if matches else None


def pick_entry(entries, wanted, previous, remembered, default):
    """Asked-for model, else the one in use, else the remembered one, else the default."""
    by_hash = {e.card.sha256: e for e in entries}
    return (entry_by_label(entries, wanted)
            or (by_hash.get(previous.card.sha256) if previous is not None else None)
            or entry_by_label(entries, remembered)
            or (by_hash.get(default.card.sha256) if default is not None else None)
            or (entries[0] if entries else None))


class ModelChoice(QObject):
    changed = Signal(object, bool)  # the ModelEntry now in use, chosen by the reader (not picked)
    listed = Signal(str)  # after every listing: "" or why there is no model

    def __init__(self, combo, settings, parent=None):
        super().__init__(parent)
        self.combo, self.settings = combo, settings
        self.entries: list = []
        self._wanted: str | None = None  # "name vN" asked for by select()
        combo.activated.connect(self._activated)

    @property
    def current(self):
        index = self.combo.currentIndex()
        return self.entries[index] if 0 <= index < len(self.entries) else None

    def refresh(self) -> None:
        from desktop.workers import run_in_pool

        run_in_pool(list_entries, on_done=self._listed,
                    on_error=lambda message: self._listed(([], None), message), context="Listing the models")

    def select(self, label: str) -> None:
        """Make model `label` ("name vN") the one in use once the list is read again."""
        self.settings.model_name = label
        self._wanted = label
        self.refresh()

    def _listed(self, listing, error: str | None = None) -> None:
        entries, default = listing
        previous = self.current
        self.entries = list(entries)
        fill_combo(self.combo, self.entries)
        wanted, self._wanted = self._wanted, None
        chosen = pick_entry(self.entries, wanted, previous, self.settings.model_name, default)
        if chosen is not None:
            self.combo.setCurrentIndex(self.entries.index(chosen))
            if previous is None or previous.card.sha256 != chosen.card.sha256:
                self.changed.emit(chosen, False)
        self.listed.emit("" if self.entries else (error or "No screening model is installed. Train one with "
                                                            "Train…."))

    def _activated(self, _index: int) -> None:
        entry = self.current
        if entry is not None:
            self.settings.model_name = entry.card.label
            self.changed.emit(entry, True)
