"""The main window's panes: filter + results table, reading bar + viewer, review panel.

Construction only: the window keeps the slots; this builds the widgets as window
attributes, fixes the tab order across panes and sizes the layout to fit 1280x800.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QHeaderView, QLabel, QSplitter,
                               QStyledItemDelegate, QTableView, QVBoxLayout, QWidget)

from core.reading.session import FILTER_QUEUE, FILTERS, QUEUE_TITLES
from desktop.reading_bar import ReadingBar
from desktop.results_model import (COL_AI_CALL, COL_FILE, COL_PATIENT, COL_PROBABILITY, COL_READER,
                                   COL_STATUS, COL_STUDY_CALL, COL_STUDY_DATE, COL_THUMBNAIL, COL_TRUTH,
                                   COL_VIEW)
from desktop.review_panel import ReviewPanel
from desktop.tables import row_table
from desktop.viewer import ViewerPanel


def build_panes(w) -> None:
    left = QWidget(w)
    filter_row = QHBoxLayout()
    filter_row.addWidget(QLabel("Show:", left))
    w.filter_combo = QComboBox(left)
    w.filter_combo.setObjectName("filterCombo")
    w.filter_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
    w.filter_combo.activated.connect(lambda i: w.set_filter(w.filter_combo.itemData(i)))
    filter_row.addWidget(w.filter_combo, 1)
    w.table = row_table(left, w.results_model, "resultsTable")
    w.table.setTabKeyNavigation(False)  # Tab leaves the table for the next pane
    w.table.setAlternatingRowColors(True)
    w.table.setWordWrap(False)
    w.table.setIconSize(QSize(TABLE_ICON, TABLE_ICON))
    w.table.verticalHeader().setDefaultSectionSize(TABLE_ICON + 6)
    w.table.verticalHeader().hide()
    fix_column_widths(w.table)
    header = w.table.horizontalHeader()
    header.setSortIndicatorShown(True)
    left_layout = QVBoxLayout(left)
    left_layout.setContentsMargins(0, 0, 0, 0)
    left_layout.addLayout(filter_row)
    left_layout.addWidget(w.table, 1)

    centre = QWidget(w)
    w.reading_bar = ReadingBar(centre)
    w.reading_bar.previous_requested.connect(w.previous_image)
    w.reading_bar.next_requested.connect(w.next_image)
    w.reading_bar.decision_requested.connect(w.decide)
    w.reading_bar.close_queue_requested.connect(w.close_queue)
    w.viewer = ViewerPanel(w.settings.heatmap_visible, w.settings.heatmap_opacity, centre)
    w.viewer.heatmap_toggled.connect(lambda on: setattr(w.settings, "heatmap_visible", on))
    w.viewer.opacity_changed.connect(lambda value: setattr(w.settings, "heatmap_opacity", value))
    centre_layout = QVBoxLayout(centre)
    centre_layout.setContentsMargins(0, 0, 0, 0)
    centre_layout.addWidget(w.reading_bar)
    centre_layout.addWidget(w.viewer, 1)

    w.review = ReviewPanel(w)
    w.confusion, w.details, w.sign_off_box = w.review.confusion, w.review.details, \
        w.review.sign_off
    w.confusion.queue_requested.connect(w.open_queue)
    w.details.screen_anyway_requested.connect(w.screen_anyway)
    w.details.confirm_requested.connect(w.confirm_out_of_scope)
    w.sign_off_box.sign_off_requested.connect(w.toggle_sign_off)
    w.sign_off_box.amend_requested.connect(w.toggle_sign_off)
    w.splitter = QSplitter(Qt.Orientation.Horizontal, w)
    w.splitter.setObjectName("mainSplitter")
    for widget in (left, centre, w.review):
        w.splitter.addWidget(widget)
    w.splitter.setStretchFactor(1, 1)
    # Neither side pane can be squeezed below what it shows whole: the table keeps its key
    # columns, the review panel its matrix (the viewer gives way instead).
    left.setMinimumWidth(key_columns_width(w.table))
    w.review.setMinimumWidth(max(REVIEW_MIN_WIDTH, w.review.minimumSizeHint().width()))
    for index in (0, 2):
        w.splitter.setCollapsible(index, False)
    w.setCentralWidget(w.splitter)
    # Tab order across panes: toolbar -> table -> viewer -> review panel.
    chain = [w.model_combo, w.threshold_control.spin, w.filter_combo, w.table, w.viewer.view,
             w.confusion.review_button]
    for first, second in zip(chain, chain[1:]):
        QWidget.setTabOrder(first, second)


# Fixed widths (the reader may drag them): nothing jumps as results stream in, and the file,
# AI call, probability, truth and reader columns fit in the table's default width at 1280x800.
TABLE_ICON = 48  # thumbnails drawn a little smaller than stored: the key columns need the room
COLUMN_WIDTHS = {COL_THUMBNAIL: TABLE_ICON + 4, COL_FILE: 92, COL_AI_CALL: 82, COL_PROBABILITY: 42,
                 COL_TRUTH: 82, COL_READER: 84, COL_PATIENT: 110, COL_VIEW: 60, COL_STUDY_CALL: 150,
                 COL_STUDY_DATE: 84, COL_STATUS: 160}
KEY_COLUMNS = (COL_FILE, COL_AI_CALL, COL_PROBABILITY, COL_TRUTH, COL_READER)
DEFAULT_SIZE = (1280, 760)  # fits a 1280x800 screen
# At 1280 px the reading bar above the viewer needs about 530: the table and the review panel
# share the rest, each at its minimum (they cannot be squeezed further; the viewer can grow).
DEFAULT_SPLIT = (450, 530, 290)  # table (every key column), viewer, review panel
REVIEW_MIN_WIDTH = 290  # the confusion matrix with its row and column labels, unclipped


class _ElideMiddle(QStyledItemDelegate):
    """A long file name (a DICOM UID) keeps its start and its end: "1.2.826…4321.dcm"."""

    def initStyleOption(self, option, index) -> None:
        super().initStyleOption(option, index)
        option.textElideMode = Qt.TextElideMode.ElideMiddle


def fix_column_widths(table: QTableView) -> None:
    header = table.horizontalHeader()
    header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    header.setSectionResizeMode(COL_THUMBNAIL, QHeaderView.ResizeMode.Fixed)
    header.setStretchLastSection(False)
    for column, width in COLUMN_WIDTHS.items():
        header.resizeSection(column, width)
    table.setTextElideMode(Qt.TextElideMode.ElideRight)  # every elided cell has a whole tooltip
    table.setItemDelegateForColumn(COL_FILE, _ElideMiddle(table))


def key_columns_width(table: QTableView) -> int:
    """Pixels the thumbnail and the key columns need, with the scroll bar and the frame."""
    header = table.horizontalHeader()
    columns = sum(header.sectionSize(c) for c in (COL_THUMBNAIL, *KEY_COLUMNS))
    return columns + table.verticalScrollBar().sizeHint().width() + 2 * table.frameWidth()


def restore_layout(w) -> None:
    geometry, state = w.settings.geometry, w.settings.splitter_state
    if geometry is not None:
        w.restoreGeometry(geometry)
    else:
        w.resize(*DEFAULT_SIZE)
    if state is not None:
        w.splitter.restoreState(state)
    else:
        w.splitter.setSizes(list(DEFAULT_SPLIT))


def fill_filter_combo(combo: QComboBox, session) -> None:
    """'All (600)', 'Not screened (535)', ... and, while a queue is open, the queue itself.
    Texts are updated in place when the entries are the same (an open popup stays open)."""
    counts = session.filter_counts()
    entries = [(f"{text} ({counts[name]})", name) for name, text in FILTERS.items()]
    if session.queue_kind is not None:
        entries.append((f"Queue: {QUEUE_TITLES.get(session.queue_kind, '')} ({len(session.queue)})", FILTER_QUEUE))
    combo.blockSignals(True)
    if [combo.itemData(i) for i in range(combo.count())] == [name for _text, name in entries]:
        for i, (text, _name) in enumerate(entries):
            combo.setItemText(i, text)
    else:
        combo.clear()
        for text, name in entries:
            combo.addItem(text, name)
    combo.setCurrentIndex(max(0, combo.findData(session.filter)))
    combo.blockSignals(False)


def add_inbox(w) -> None:
    """The PACS Inbox dock (desktop.inbox_panel): received studies open like any folder.
    Shown when a listener has made its inbox; View > Inbox toggles it."""
    from desktop.inbox_panel import InboxPanel

    w.inbox = InboxPanel(parent=w)
    w.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, w.inbox)
    w.inbox.studyOpened.connect(w.open_study)
    w.inbox.message.connect(lambda text: w.statusBar().showMessage(text, 8000))
    w.view_menu.addAction(w.inbox.toggleViewAction())
    w.inbox.setVisible(Path(w.inbox.settings.inbox).is_dir())
