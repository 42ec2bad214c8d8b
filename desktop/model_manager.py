"""Model manager: every installed model in a table; the user's own models can be
renamed or deleted, shipped ones are read-only.

Listing reads only the small JSON cards, so it runs on the GUI thread.
"""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QHBoxLayout, QHeaderView,
                               QInputDialog, QLabel, QLineEdit, QMessageBox, QPushButton,
                               QVBoxLayout)

from core.models.registry import ModelEntry, ModelError, delete_model, list_models, rename_model
from desktop.tables import FixedColumnsModel, row_table

COLUMNS = ("Name", "Version", "Source", "Architecture", "Created", "Threshold", "AUROC")


def _cell(entry: ModelEntry, column: int):
    card = entry.card
    auroc = (card.validation_metrics or {}).get("auroc")
    return (card.name, card.version, "shipped" if entry.shipped else "user", card.architecture,
            card.created.replace("T", " ")[:19] if card.created else "",
            f"{card.threshold:.4g}", "" if auroc is None else f"{auroc:.3f}")[column]


class ModelTableModel(FixedColumnsModel):
    """Rows are core.models.registry.ModelEntry, in list_models order (shipped first)."""

    columns = COLUMNS

    def __init__(self, parent=None):
        super().__init__(parent)
        self.entries: list[ModelEntry] = []

    def reload(self) -> None:
        self.beginResetModel()
        self.entries = list_models()
        self.endResetModel()

    def row_count(self) -> int:
        return len(self.entries)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        entry = self.entries[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return str(_cell(entry, index.column()))
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{entry.keras_path}\n{entry.card.training_command or entry.card.notes}"
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() in (1, 5, 6):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def entry_at(self, row: int) -> ModelEntry | None:
        return self.entries[row] if 0 <= row < len(self.entries) else None


def rename_problem(entry: ModelEntry, new_name: str, entries: list[ModelEntry]) -> str | None:
    """Why renaming would be wrong, or None. Two models with the same name and
    version would make "name vN" ambiguous in the model list and the CLI."""
    new_name = new_name.strip()
    if entry.shipped:
        return "Shipped models cannot be renamed."
    if any(e is not entry and e.card.name == new_name and e.card.version == entry.card.version
           for e in entries):
        return f"A model called {new_name} v{entry.card.version} already exists."
    return None


class ModelManagerDialog(QDialog):
    modelsChanged = Signal()  # a rename or delete happened: model lists must reload

    def __init__(self, parent=None, active_label: str | None = None):
        super().__init__(parent)
        self.setWindowTitle("Models - PneumoScan")
        self.resize(820, 380)
        self.active_label = active_label  # the main window's model, to warn before deleting it
        self.model = ModelTableModel(self)
        self.table = row_table(self, self.model, "modelsTable")
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)  # names vary most
        self.rename_button = QPushButton("Rename…", self)
        self.delete_button = QPushButton("Delete…", self)
        self.note_label = QLabel(self)
        self.note_label.setObjectName("managerNote")
        self.note_label.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)

        row = QHBoxLayout()
        row.addWidget(self.rename_button)
        row.addWidget(self.delete_button)
        row.addWidget(self.note_label, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        layout.addLayout(row)
        layout.addWidget(buttons)

        self.rename_button.clicked.connect(self.ask_rename)
        self.delete_button.clicked.connect(self.ask_delete)
        self.table.selectionModel().currentRowChanged.connect(lambda *_: self._update_buttons())
        self.reload()

    def reload(self, select_path=None) -> None:
        self.model.reload()
        rows = [i for i, e in enumerate(self.model.entries) if select_path and e.keras_path == select_path]
        if rows:
            self.table.selectRow(rows[0])
        self._update_buttons()

    def selected_entry(self) -> ModelEntry | None:
        index = self.table.currentIndex()
        return self.model.entry_at(index.row()) if index.isValid() else None

    def select_label(self, label: str) -> None:
        for row, entry in enumerate(self.model.entries):
            if entry.label == label:
                self.table.selectRow(row)
                return

    def _update_buttons(self) -> None:
        entry = self.selected_entry()
        editable = entry is not None and not entry.shipped
        self.rename_button.setEnabled(editable)
        self.delete_button.setEnabled(editable)
        if entry is not None and entry.shipped:
            self.note_label.setText("Shipped models come with PneumoScan and cannot be renamed or deleted.")
        else:
            self.note_label.clear()

    def _say(self, problem: str) -> None:
        # In the dialog rather than a message box: the table stays in view.
        self.note_label.setText(f"<span style='color:#b00020'>{problem}</span>")

    # -- actions (ask_* talk to the user; rename/delete do the work) --------------

    def ask_rename(self) -> None:
        entry = self.selected_entry()
        if entry is None or entry.shipped:
            return
        name, ok = QInputDialog.getText(self, "Rename model", f"New name for {entry.label}:",
                                        QLineEdit.EchoMode.Normal, entry.card.name)
        if ok and name.strip() and name.strip() != entry.card.name:
            self.rename(entry, name)

    def rename(self, entry: ModelEntry, new_name: str) -> bool:
        problem = rename_problem(entry, new_name, self.model.entries)
        try:
            if problem:
                raise ModelError(problem)
            rename_model(entry, new_name)
        except (ModelError, OSError) as exc:
            self._say(f"Not renamed: {exc}")
            return False
        self.reload(select_path=entry.keras_path)
        self.modelsChanged.emit()
        return True

    def ask_delete(self) -> None:
        entry = self.selected_entry()
        if entry is None or entry.shipped:
            return
        text = f"Delete {entry.label}? Its file is removed and this cannot be undone."
        if self.active_label and entry.label == self.active_label:
            text += "\n\nIt is the model in use; the default model will be used instead."
        answer = QMessageBox.question(self, "Delete model", text,
                                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
                                      QMessageBox.StandardButton.No)
        if answer == QMessageBox.StandardButton.Yes:
            self.delete(entry)

    def delete(self, entry: ModelEntry) -> bool:
        try:
            delete_model(entry)
        except (ModelError, OSError) as exc:
            self._say(f"Not deleted: {exc}")
            return False
        self.reload()
        self.modelsChanged.emit()
        return True


def open_model_manager(window) -> ModelManagerDialog:
    """Open the manager from the main window; its model list follows every change."""
    current = window.current_entry
    dialog = ModelManagerDialog(window, active_label=current.label if current is not None else None)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.modelsChanged.connect(window.refresh_models)
    dialog.show()
    return dialog
