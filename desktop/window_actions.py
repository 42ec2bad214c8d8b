"""The main window's actions, menus and toolbar (construction only; the window has the slots)."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QComboBox, QLabel, QToolButton

from core.reading.cells import NEEDS_REVIEW
from core.reading.session import OUT_OF_SCOPE_QUEUE
from desktop.reading_keys import SHORTCUTS
from desktop.threshold_control import ThresholdControl


def _action(window, text: str, slot, shortcut=None, tip: str | None = None) -> QAction:
    action = QAction(text, window)
    action.triggered.connect(lambda _checked=False: slot())
    if shortcut is not None:
        action.setShortcut(QKeySequence(shortcut))
    if tip:
        action.setToolTip(tip)
    return action


def _open_site_calibration(window) -> None:
    from desktop import wizard  # looked up at call time (tests replace it)
    wizard.open_site_calibration(window)


def build_actions(w) -> None:
    """Actions (as window attributes) and the menu bar."""
    w.open_action = _action(w, "Open folder…", w.choose_study, QKeySequence.StandardKey.Open)
    w.run_action = _action(w, "Screen", lambda: w.start_screening(),
                           tip="Screen the images that have no stored result for this model")
    w.rescreen_action = _action(w, "Screen again (ignore stored results)", lambda: w.start_screening(use_stored=False))
    w.cancel_action = _action(w, "Cancel", w.cancel_screening, tip="Stop screening (results so far are kept)")
    w.export_csv_action = _action(w, "Export CSV…", lambda: w.export_csv())
    w.export_pdf_action = _action(w, "Export PDF report…", lambda: w.export_pdf())
    w.train_action = _action(w, "Train…", w.open_training_wizard, tip="Train or fine-tune a model on labelled images")
    w.manage_models_action = _action(w, "Manage models…", w.open_model_manager, tip="Rename or delete your models")
    w.reader_action = _action(w, "Reader name…", w.ask_reader_name, tip="Recorded with every decision and sign-off")
    w.sign_off_action = _action(w, "Sign off / amend study…", w.toggle_sign_off)
    w.screen_anyway_action = _action(w, "Screen anyway", w.screen_anyway,
                                     tip="Show the AI call on the current out-of-scope image (recorded)")
    w.confirm_out_of_scope_action = _action(w, "Confirm out of scope", w.confirm_out_of_scope,
                                            tip="Record that the current image is outside the model's scope")
    w.calibrate_action = _action(w, "Calibrate to my site…", lambda: _open_site_calibration(w),
                                 tip="Choose an operating point on your own labelled images")
    w.about_action = _action(w, "About PneumoScan", w.show_about)
    w.shortcuts_action = _action(w, "Keyboard shortcuts", w.show_shortcuts, Qt.Key.Key_F1)
    w.quit_action = _action(w, "Quit", w.close, QKeySequence.StandardKey.Quit)
    w.next_pane_action = _action(w, "Next pane", lambda: w.focus_pane(+1), Qt.Key.Key_F6)
    w.previous_pane_action = _action(w, "Previous pane", lambda: w.focus_pane(-1), "Shift+F6")
    w.close_queue_action = _action(w, "Close review queue", w.close_queue, Qt.Key.Key_Escape)
    for action in (w.next_pane_action, w.previous_pane_action, w.close_queue_action):
        w.addAction(action)  # window-wide keys

    menu = w.menuBar().addMenu("&File")
    for action in (w.open_action, w.export_csv_action, w.export_pdf_action):
        menu.addAction(action)
    menu.addSeparator()
    menu.addAction(w.quit_action)
    menu = w.menuBar().addMenu("&Screening")
    for action in (w.run_action, w.rescreen_action, w.cancel_action, w.train_action, w.calibrate_action,
                   w.manage_models_action):
        menu.addAction(action)
    menu = w.menuBar().addMenu("&Review")
    menu.addAction(_action(w, "Open needs-review queue", lambda: w.open_queue(NEEDS_REVIEW)))
    menu.addAction(_action(w, "Open out-of-scope queue", lambda: w.open_queue(OUT_OF_SCOPE_QUEUE)))
    menu.addAction(w.screen_anyway_action)
    menu.addAction(w.confirm_out_of_scope_action)
    menu.addAction(w.close_queue_action)
    menu.addAction(w.sign_off_action)
    menu.addSeparator()
    # The reading keys act on the viewer/table only (desktop.reading_keys); listed here for discovery.
    for keys, text in SHORTCUTS[:9]:
        entry = menu.addAction(f"{text}\t{keys}")
        entry.setEnabled(False)
    w.view_menu = w.menuBar().addMenu("&View")  # the Inbox dock's toggle goes here
    menu = w.menuBar().addMenu("S&ettings")
    menu.addAction(w.reader_action)
    menu = w.menuBar().addMenu("&Help")
    menu.addAction(w.shortcuts_action)
    menu.addAction(w.about_action)


def build_toolbar(w) -> None:
    bar = w.addToolBar("Main")
    bar.setObjectName("mainToolbar")
    bar.setMovable(False)
    bar.addAction(w.open_action)
    bar.addSeparator()
    bar.addWidget(QLabel(" Model ", w))
    w.model_combo = QComboBox(w)
    w.model_combo.setObjectName("modelCombo")
    w.model_combo.setMinimumContentsLength(18)
    w.model_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    w.model_combo.setPlaceholderText("loading models…")
    # The selector itself tells what the chosen model is for (each list entry has its own tooltip).
    w.model_combo.currentIndexChanged.connect(
        lambda i: w.model_combo.setToolTip(w.model_combo.itemData(i, Qt.ItemDataRole.ToolTipRole) or ""))
    bar.addWidget(w.model_combo)
    w.threshold_control = ThresholdControl(0.5, w)
    w.threshold_control.setMaximumWidth(360)  # a compact toolbar item, not a stretch
    w.threshold_control.threshold_changed.connect(w.set_threshold)
    bar.addWidget(w.threshold_control)
    bar.addSeparator()
    bar.addAction(w.run_action)
    bar.addAction(w.cancel_action)
    export_button = QToolButton(w)
    export_button.setText("Export")
    export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
    export_button.addAction(w.export_csv_action)
    export_button.addAction(w.export_pdf_action)
    bar.addWidget(export_button)
    bar.addAction(w.train_action)
    w.toolbar = bar
