"""Which model the main window offers and picks (no widgets kept here)."""
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


def models_listed(window, listing, error: str | None = None) -> None:
    """Fill the window's model list and keep (or pick) the model in use; a new model
    re-opens the study (other model: other stored results)."""
    entries, default = listing
    previous = window.current_entry
    window.model_entries = list(entries)
    fill_combo(window.model_combo, window.model_entries)
    if not window.model_entries:
        window.notify("No model", error or "No screening model is installed. Train one with Train….")
    wanted, window._wanted_model = window._wanted_model, None
    chosen = pick_entry(window.model_entries, wanted, previous, window.settings.model_name, default)
    if chosen is not None:
        window.model_combo.setCurrentIndex(window.model_entries.index(chosen))
        if previous is None or previous.card.sha256 != chosen.card.sha256:
            window.inbox.set_model_hash(chosen.card.sha256)
            window.set_threshold(chosen.card.threshold)
            if previous is not None and window.study_folder is not None and not window._pending_study:
                window.open_study(window.study_folder)
    if window._pending_study:
        folder, window._pending_study = window._pending_study, None
        window.open_study(folder)
