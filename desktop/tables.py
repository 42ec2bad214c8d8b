"""What every read-only table of the app shares: a model over a list with fixed column titles, and
a view that selects whole rows, one at a time."""
from __future__ import annotations

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt
from PySide6.QtWidgets import QAbstractItemView, QTableView


class FixedColumnsModel(QAbstractTableModel):
    """A flat, read-only table: subclasses set `columns` and say how many rows there are."""

    columns: tuple[str, ...] = ()

    def row_count(self) -> int:
        raise NotImplementedError

    def column_tip(self, section: int) -> str | None:
        """The tooltip of a column title (None: the title says it all)."""
        return None

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else self.row_count()

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.columns)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation != Qt.Orientation.Horizontal:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self.columns[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.column_tip(section)
        return None


def row_table(parent, model, name: str) -> QTableView:
    """A table view over `model` that selects one whole row and never edits in place."""
    table = QTableView(parent)
    table.setObjectName(name)
    table.setModel(model)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    return table
