"""The results table: one row per screened image (model/view).

`ResultsTableModel` holds the rows; `ResultsFilterProxy` sorts and filters them
for the view. The AI call is derived from the probability and the *current*
threshold on every paint, so moving the threshold re-labels rows instantly.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QSortFilterProxyModel, Qt
from PySide6.QtGui import QBrush, QColor, QImage

from core.results import POSITIVE, classify
from desktop.review_queue import FILTER_ALL, ReviewItem, matches_filter

# What a reader scans first comes first: file, probability, AI call, own decision.
COL_THUMBNAIL, COL_FILE, COL_PROBABILITY, COL_AI_CALL, COL_READER, COL_TRUTH, \
    COL_PATIENT, COL_STUDY_DATE, COL_STATUS = range(9)
HEADERS = ("", "File", "Probability", "AI call", "Reader", "Truth", "Patient", "Study date", "Status")

KEY_ROLE = Qt.ItemDataRole.UserRole + 1  # the row's path key
SORT_ROLE = Qt.ItemDataRole.UserRole + 2  # typed sort key (numbers sort as numbers)

_POSITIVE_COLOUR = QColor("#c0392b")
_ERROR_COLOUR = QColor("#8e44ad")
_DISAGREE_COLOUR = QColor("#d35400")


def format_study_date(value) -> str:
    text = str(value or "")
    if len(text) == 8 and text.isdigit():  # DICOM DA: YYYYMMDD
        return f"{text[:4]}-{text[4:6]}-{text[6:]}"
    return text


def describe_decision(decision) -> str:
    """'Agree (PNEUMONIA)' style text for a store Decision, or ''."""
    if decision is None:
        return ""
    text = decision.decision.capitalize()
    return f"{text} ({decision.reader_label})" if decision.reader_label else text


@dataclass
class StudyRow:
    key: str  # resolved path
    file: str  # path relative to the study folder
    result: object  # core.results.ScreenResult
    truth: str | None = None
    decision: object = None  # core.store.Decision (latest, not undone) or None
    thumbnail: QImage | None = None

    @property
    def probability(self) -> float | None:
        return None if self.result.error else self.result.probability

    def review_item(self) -> ReviewItem:
        return ReviewItem(key=self.key, probability=self.probability, truth=self.truth,
                          reader_label=getattr(self.decision, "reader_label", None),
                          error=self.result.error is not None)


class ResultsTableModel(QAbstractTableModel):
    def __init__(self, parent=None):
        super().__init__(parent)
        self._rows: list[StudyRow] = []
        self._row_of: dict[str, int] = {}
        self._threshold = 0.5
        self.study_folder: Path | None = None
        self.truth: dict[str, str] = {}
        # Latest decision per path, kept apart from the rows: decisions belong to
        # the image, so rows that arrive later (screened now, other model) get theirs.
        self._decisions: dict = {}

    # -- feeding -------------------------------------------------------------

    def reset_study(self, folder, truth: dict[str, str] | None = None) -> None:
        self.beginResetModel()
        self._rows.clear()
        self._row_of.clear()
        self.study_folder = Path(folder) if folder else None
        self.truth = dict(truth or {})
        self._decisions = {}
        self.endResetModel()

    def _relative(self, key: str) -> str:
        if self.study_folder is not None:
            try:
                return str(Path(key).relative_to(self.study_folder))
            except ValueError:
                pass
        return Path(key).name

    def add_results(self, results, thumbnails: dict | None = None) -> None:
        """Append (or update) rows for results; keyed by the resolved path."""
        thumbnails = thumbnails or {}
        fresh = []
        for result in results:
            key = str(Path(result.path).resolve())
            row = self._row_of.get(key)
            if row is not None:
                self._rows[row].result = result
                if key in thumbnails:
                    self._rows[row].thumbnail = thumbnails[key]
                self._emit_row_changed(row)
            else:
                fresh.append(StudyRow(key=key, file=self._relative(key), result=result,
                                      truth=self.truth.get(key), decision=self._decisions.get(key),
                                      thumbnail=thumbnails.get(key)))
        if fresh:
            first = len(self._rows)
            self.beginInsertRows(QModelIndex(), first, first + len(fresh) - 1)
            for offset, row in enumerate(fresh):
                self._rows.append(row)
                self._row_of[row.key] = first + offset
            self.endInsertRows()

    def add_result(self, result, thumbnail: QImage | None = None) -> None:
        key = str(Path(result.path).resolve())
        self.add_results([result], {key: thumbnail} if thumbnail is not None else None)

    def set_thumbnail(self, key: str, image: QImage) -> None:
        row = self._row_of.get(key)
        if row is not None:
            self._rows[row].thumbnail = image
            index = self.index(row, COL_THUMBNAIL)
            self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])

    def set_decisions(self, decisions: dict) -> None:
        """path key -> latest Decision (missing keys: no decision)."""
        self._decisions = dict(decisions)
        for item in self._rows:
            item.decision = decisions.get(item.key)
        if self._rows:
            self.dataChanged.emit(self.index(0, 0), self.index(len(self._rows) - 1, COL_STATUS))

    def set_decision(self, key: str, decision) -> None:
        if decision is None:
            self._decisions.pop(key, None)
        else:
            self._decisions[key] = decision
        row = self._row_of.get(key)
        if row is not None:
            self._rows[row].decision = decision
            self._emit_row_changed(row)

    def set_threshold(self, threshold: float) -> None:
        self._threshold = float(threshold)
        if self._rows:
            # The call and the reader column's disagreement colour follow the threshold.
            self.dataChanged.emit(self.index(0, COL_AI_CALL), self.index(len(self._rows) - 1, COL_READER))

    def _emit_row_changed(self, row: int) -> None:
        self.dataChanged.emit(self.index(row, 0), self.index(row, COL_STATUS))

    # -- reading -------------------------------------------------------------

    @property
    def threshold(self) -> float:
        return self._threshold

    def rows(self) -> list[StudyRow]:
        return list(self._rows)

    def row_by_key(self, key: str) -> StudyRow | None:
        row = self._row_of.get(key)
        return None if row is None else self._rows[row]

    def row_number(self, key: str) -> int | None:
        return self._row_of.get(key)

    def row_at(self, row: int) -> StudyRow:
        return self._rows[row]

    def review_items(self) -> list[ReviewItem]:
        return [row.review_item() for row in self._rows]

    def ai_call(self, row: StudyRow) -> str | None:
        return classify(row.probability, self._threshold)

    # -- Qt model interface --------------------------------------------------

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(HEADERS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return HEADERS[section]
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        item = self._rows[index.row()]
        col = index.column()
        if role == KEY_ROLE:
            return item.key
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(item, col)
        if role == SORT_ROLE:
            return self._sort_key(item, col)
        if role == Qt.ItemDataRole.DecorationRole and col == COL_THUMBNAIL:
            return item.thumbnail
        if role == Qt.ItemDataRole.ForegroundRole:
            return self._foreground(item, col)
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == COL_STATUS and item.result.error:
                return item.result.error
            if col == COL_FILE:
                return item.key
        if role == Qt.ItemDataRole.TextAlignmentRole and col == COL_PROBABILITY:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _display(self, item: StudyRow, col: int):
        meta = item.result.meta or {}
        if col == COL_FILE:
            return item.file
        if col == COL_PATIENT:
            return str(meta.get("PatientID", ""))
        if col == COL_STUDY_DATE:
            return format_study_date(meta.get("StudyDate"))
        if col == COL_PROBABILITY:
            return "" if item.probability is None else f"{item.probability:.3f}"
        if col == COL_AI_CALL:
            return self.ai_call(item) or ""
        if col == COL_TRUTH:
            return item.truth or ""
        if col == COL_READER:
            return describe_decision(item.decision)
        if col == COL_STATUS:
            return f"Error: {item.result.error}" if item.result.error else "Screened"
        return None

    def _sort_key(self, item: StudyRow, col: int):
        if col == COL_PROBABILITY:
            return -1.0 if item.probability is None else float(item.probability)
        if col == COL_THUMBNAIL:
            return item.file
        return str(self._display(item, col) or "")

    def _foreground(self, item: StudyRow, col: int):
        if col == COL_STATUS and item.result.error:
            return QBrush(_ERROR_COLOUR)
        if col == COL_AI_CALL and self.ai_call(item) == POSITIVE:
            return QBrush(_POSITIVE_COLOUR)
        if col == COL_READER and item.review_item().reader_label not in (None, self.ai_call(item)):
            return QBrush(_DISAGREE_COLOUR)
        return None


class ResultsFilterProxy(QSortFilterProxyModel):
    """Sorts on typed keys and keeps the rows of one review filter."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._filter = FILTER_ALL
        self.setSortRole(SORT_ROLE)
        self.setDynamicSortFilter(True)

    @property
    def filter_name(self) -> str:
        return self._filter

    def set_filter(self, name: str) -> None:
        self._begin_change()
        self._filter = name
        self._end_change()

    def refilter(self) -> None:
        """Re-apply the filter after the threshold or a decision changed."""
        if self._filter != FILTER_ALL:
            self._begin_change()
            self._end_change()

    # Qt >= 6.9 wants begin/endFilterChange around a filter change (invalidateFilter is deprecated).
    def _begin_change(self) -> None:
        if hasattr(self, "beginFilterChange"):
            self.beginFilterChange()

    def _end_change(self) -> None:
        if hasattr(self, "endFilterChange"):
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            self.invalidateFilter()

    def filterAcceptsRow(self, source_row: int, source_parent) -> bool:
        model = self.sourceModel()
        item = model.row_at(source_row).review_item()
        return matches_filter(item, self._filter, model.threshold)

    def key_at(self, proxy_row: int) -> str | None:
        index = self.index(proxy_row, 0)
        return index.data(KEY_ROLE) if index.isValid() else None

    def proxy_row_of(self, key: str) -> int | None:
        source_row = self.sourceModel().row_number(key)
        if source_row is None:
            return None
        index = self.mapFromSource(self.sourceModel().index(source_row, 0))
        return index.row() if index.isValid() else None
