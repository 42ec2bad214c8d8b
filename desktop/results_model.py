"""The results table: a Qt model over a core.reading.session.ReadingSession (it holds no data).

Row i of the table is `session.visible_keys()[i]`: the session filters and
orders, so the table and the viewer can never disagree about the image. Header
clicks set the session's order. Thumbnails are the only thing kept here (they
are Qt images). Calls and reader columns follow the session's threshold.
"""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor, QImage

from core.screening.results import OUT_OF_SCOPE, POSITIVE
from core.reading.session import ORDER_FILE, ORDER_GROUPED, ORDER_PROBABILITY
from desktop.tables import FixedColumnsModel

# What a reader scans first comes first: file, AI call, probability, truth, own decision (all
# visible at 1280x800, desktop.window_layout.COLUMN_WIDTHS); then the grouping.
COL_THUMBNAIL, COL_FILE, COL_AI_CALL, COL_PROBABILITY, COL_TRUTH, COL_READER, COL_PATIENT, COL_VIEW, \
    COL_STUDY_CALL, COL_STUDY_DATE, COL_STATUS = range(11)
HEADERS = ("", "File", "AI call", "Prob.", "Truth", "Reader", "Patient", "View", "Study call",
           "Study date", "Status")
HEADER_TIPS = {COL_PROBABILITY: "AI probability of pneumonia (calibrated)", COL_TRUTH: "Known label of the image",
               COL_READER: "Your decision"}
_ORDER_OF_COLUMN = {COL_FILE: ORDER_FILE, COL_THUMBNAIL: ORDER_FILE, COL_PROBABILITY: ORDER_PROBABILITY}

KEY_ROLE = Qt.ItemDataRole.UserRole + 1  # the row's path key

_POSITIVE_COLOUR = QColor("#c0392b")
_ERROR_COLOUR = QColor("#8e44ad")
_DISAGREE_COLOUR = QColor("#d35400")
_MUTED_COLOUR = QColor("#7f8c8d")


def format_study_date(value) -> str:
    text = str(value or "")
    if len(text) == 8 and text.isdigit():  # DICOM DA: YYYYMMDD
        return f"{text[:4]}-{text[4:6]}-{text[6:]}"
    return text


def status_text(row) -> str:
    if not row.screened:
        return "Not screened"
    if row.error:
        return f"Error: {row.error}"
    if row.scope and row.override is not None:
        return f"Screened anyway (out of scope: {row.scope})"
    if row.scope:
        return f"Out of scope: {row.scope}"
    return "Screened"


class ResultsTableModel(FixedColumnsModel):
    columns = HEADERS

    def __init__(self, session, parent=None):
        super().__init__(parent)
        self.session = session
        self._keys: list[str] = []
        self._row_of: dict[str, int] = {}
        self._thumbnails: dict[str, QImage] = {}
        self._groups: dict = {}
        self.unsaved_shown = False  # the store is failing: unwritten decisions are marked

    # -- feeding -------------------------------------------------------------

    def refresh(self) -> None:
        """Follow the session: a new list resets the view, the same list repaints it."""
        keys = list(self.session.visible_keys())
        self._groups = {(g.patient, g.study_uid): g for g in self.session.groups()}
        if keys != self._keys:
            self.beginResetModel()
            self._keys = keys
            self._row_of = {k: i for i, k in enumerate(keys)}
            self.endResetModel()
        elif keys:
            self.dataChanged.emit(self.index(0, 0), self.index(len(keys) - 1, len(HEADERS) - 1))

    def clear_thumbnails(self) -> None:
        self._thumbnails.clear()

    def set_thumbnail(self, key: str, image: QImage | None) -> None:
        if image is None:
            return
        self._thumbnails[key] = image
        row = self._row_of.get(key)
        if row is not None:
            index = self.index(row, COL_THUMBNAIL)
            self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])

    def thumbnail(self, key: str) -> QImage | None:
        return self._thumbnails.get(key)

    # -- reading -------------------------------------------------------------

    def key_at(self, row: int) -> str | None:
        return self._keys[row] if 0 <= row < len(self._keys) else None

    def row_number(self, key: str | None) -> int | None:
        return self._row_of.get(key) if key is not None else None

    def rows(self):
        """Every session row (all filters), in the session's order."""
        return self.session.rows()

    def row_by_key(self, key: str):
        return self.session.row(key)

    # -- Qt model interface --------------------------------------------------

    def row_count(self) -> int:
        return len(self._keys)

    def column_tip(self, section: int) -> str | None:
        return HEADER_TIPS.get(section)

    def sort(self, column: int, order=Qt.SortOrder.AscendingOrder) -> None:
        name = _ORDER_OF_COLUMN.get(column, ORDER_GROUPED)
        self.session.set_order(name, descending=order == Qt.SortOrder.DescendingOrder)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or index.row() >= len(self._keys):
            return None
        key = self._keys[index.row()]
        row = self.session.row(key)
        col = index.column()
        if row is None:
            return None
        if role == KEY_ROLE:
            return key
        if role == Qt.ItemDataRole.DisplayRole:
            return self._display(row, col)
        if role == Qt.ItemDataRole.DecorationRole and col == COL_THUMBNAIL:
            return self._thumbnails.get(key)
        if role == Qt.ItemDataRole.ForegroundRole:
            return self._foreground(row, col)
        if role == Qt.ItemDataRole.ToolTipRole:
            if col == COL_FILE:
                return row.key  # the full path: the cell may be elided in the middle
            if col != COL_THUMBNAIL:  # widths are fixed: any cell may be elided, its tooltip is whole
                return self._display(row, col) or None
        if role == Qt.ItemDataRole.TextAlignmentRole and col == COL_PROBABILITY:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None

    def _display(self, row, col: int):
        meta = (row.result.meta if row.result is not None else None) or {}
        if col == COL_FILE:
            return row.file
        if col == COL_PATIENT:
            return row.patient
        if col == COL_VIEW:
            return row.view
        if col == COL_STUDY_DATE:
            return format_study_date(meta.get("StudyDate"))
        if col == COL_PROBABILITY:
            return "" if row.probability is None else f"{row.probability:.3f}"
        if col == COL_AI_CALL:
            return self.session.call_text(row) or ("-" if not row.screened else "")
        if col == COL_STUDY_CALL:
            group = self._groups.get(row.group)
            if group is None or group.call is None or len(group.keys) < 1:
                return ""
            # The study call rests on its in-scope images only; what it left out is said.
            left = len(group.keys) - group.used
            return f"{group.call} ({group.probability:.2f}, {group.used} img" + (f", {left} left out)" if left else ")")
        if col == COL_TRUTH:
            return row.truth or ""
        if col == COL_READER:
            text = self.session.decision_text(row)
            reader = getattr(row.decision, "reader", "")
            text = f"{text} - {reader}" if text and reader else text
            # A decision the store has not written yet (ProvisionalDecision, id 0) says so: it is
            # retried (desktop.store_worker), and closing waits for it.
            return f"{text} (NOT SAVED yet)" if text and self.unsaved_shown and not row.decision.id else text
        if col == COL_STATUS:
            return status_text(row)
        return None

    def _foreground(self, row, col: int):
        if not row.screened:
            return QBrush(_MUTED_COLOUR)
        if col == COL_STATUS and row.error:
            return QBrush(_ERROR_COLOUR)
        call = self.session.ai_call(row)
        if col == COL_AI_CALL and call == POSITIVE:
            return QBrush(_POSITIVE_COLOUR)
        if col == COL_AI_CALL and call == OUT_OF_SCOPE:
            return QBrush(_MUTED_COLOUR)
        if col == COL_READER and row.decision is not None and (
                row.decision.decision == "disagree" or self.session.is_changed_call(row)):
            return QBrush(_DISAGREE_COLOUR)
        return None
