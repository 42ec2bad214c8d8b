"""Which model the main window offers and picks (the window applies the choice)."""
from __future__ import annotations

from PySide6.QtCore import Qt

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
