"""Facts about the image on screen: AI result, its patient study, DICOM attributes, reader history.

Every text wraps (nothing is clipped in a narrow panel); long values such as
UIDs are shortened with their full text in the tooltip.
"""
from __future__ import annotations

from datetime import datetime

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFormLayout, QGroupBox, QLabel, QPushButton, QVBoxLayout, QWidget

from core.reading.records import CONFIRM_OUT_OF_SCOPE, KIND_TEXT, SCREEN_ANYWAY
from desktop.results_model import format_study_date, status_text
from desktop.text import breakable, wrapping

_MAX_VALUE_CHARS = 40


def _local_time(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return iso


def describe_history_entry(decision) -> str:
    """'[undone] 2026-01-02 10:11  Agree by Dr A, on AI PNEUMONIA (p=0.812, t=0.50; model v1)'."""
    undone = "[undone] " if decision.undone else ""
    reader = f" by {decision.reader}" if getattr(decision, "reader", "") else ""
    prob = "" if decision.probability is None else f"p={decision.probability:.3f}, "
    if decision.decision in (SCREEN_ANYWAY, CONFIRM_OUT_OF_SCOPE):
        return (f"{undone}{_local_time(decision.time)}  {KIND_TEXT[decision.decision]}{reader} "
                f"(out of scope: {getattr(decision, 'reason', '') or '-'}); AI {decision.ai_call or '-'} "
                f"({prob}t={decision.threshold:.2f}; {decision.model})")
    return (f"{undone}{_local_time(decision.time)}  {decision.decision.capitalize()}{reader}, on AI "
            f"{decision.ai_call or '-'} ({prob}t={decision.threshold:.2f}; {decision.model})")


def _wrapping_label(parent) -> QLabel:
    label = wrapping(QLabel("-", parent))
    label.setTextFormat(Qt.TextFormat.PlainText)  # file names and DICOM text are data, never markup
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def _short(value) -> str:
    text = str(value)
    return text if len(text) <= _MAX_VALUE_CHARS else text[:_MAX_VALUE_CHARS - 1] + "…"


class DetailsPanel(QWidget):
    screen_anyway_requested = Signal()
    confirm_requested = Signal()
    FIELDS = ("File", "Patient", "Study", "Probability", "AI call", "Threshold", "Model", "Truth", "Reader",
              "Status")

    def __init__(self, parent=None):
        super().__init__(parent)
        result_box = QGroupBox("Image", self)
        self._form = QFormLayout(result_box)
        self._form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        self.fields: dict[str, QLabel] = {}
        for name in self.FIELDS:
            label = _wrapping_label(result_box)
            self._form.addRow(f"{name}:", label)
            self.fields[name] = label
        # Out-of-scope images get no call until the reader asks for one (recorded, undoable).
        self.screen_anyway_button = QPushButton("Screen anyway", result_box)
        self.screen_anyway_button.setObjectName("screenAnywayButton")
        self.screen_anyway_button.setToolTip("Show the AI call on this out-of-scope image "
                                             "(recorded with your name; Ctrl+Z undoes it)")
        self.screen_anyway_button.clicked.connect(self.screen_anyway_requested)
        self.screen_anyway_button.hide()
        self._form.addRow(self.screen_anyway_button)
        # ...or confirm that it is outside the model's scope (recorded, its own kind; never a label).
        self.confirm_button = QPushButton("Confirm out of scope", result_box)
        self.confirm_button.setObjectName("confirmOutOfScopeButton")
        self.confirm_button.clicked.connect(self.confirm_requested)
        self.confirm_button.hide()
        self._form.addRow(self.confirm_button)
        self._tips = {SCREEN_ANYWAY: self.screen_anyway_button.toolTip(),
                      CONFIRM_OUT_OF_SCOPE: "This image is outside what the model knows (recorded with your "
                                            "name; Ctrl+Z undoes it)"}

        self.meta_box = QGroupBox("DICOM", self)
        self._meta_form = QFormLayout(self.meta_box)
        self._meta_form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)

        history_box = QGroupBox("Reader decisions", self)
        self.history = _wrapping_label(history_box)
        self.history.setObjectName("decisionHistory")
        self.history.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        QVBoxLayout(history_box).addWidget(self.history)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(result_box)
        layout.addWidget(history_box)
        layout.addWidget(self.meta_box)
        layout.addStretch(1)
        self.history_lines: list[str] = []
        self.clear()

    def clear(self) -> None:
        for label in self.fields.values():
            label.setText("-")
        self._set_meta({})
        self._meta_shown = None
        self.screen_anyway_button.hide()
        self.confirm_button.hide()
        self.set_history([])

    def show_row(self, session, row) -> None:
        """The row as the session sees it now (threshold, study group, decision)."""
        result = row.result
        self.fields["File"].setText(breakable(row.file))
        self.fields["File"].setToolTip(row.file)
        self.fields["Patient"].setText(f"{row.patient or '-'}" + (f", view {row.view}" if row.view else ""))
        group = session.group_result(row.key)
        # The study-level call is made on in-scope images only, and says what it left out.
        self.fields["Study"].setText(group.text() if group is not None else "-")
        self.fields["Probability"].setText("-" if row.probability is None else f"{row.probability:.4f}")
        self.fields["AI call"].setText(session.call_text(row) or ("not screened" if not row.screened else "-"))
        withheld = bool(row.withheld and row.probability is not None)
        self.screen_anyway_button.setVisible(withheld)
        self.confirm_button.setVisible(withheld)
        for button, kind in ((self.screen_anyway_button, SCREEN_ANYWAY), (self.confirm_button, CONFIRM_OUT_OF_SCOPE)):
            problem = session.refusal(kind, row.key)
            button.setEnabled(problem is None)
            button.setToolTip(self._tips[kind] if problem is None else f"Not now: {problem}")
        screened_at = f" (screened at {result.threshold:.2f})" if result is not None else ""
        self.fields["Threshold"].setText(f"{session.threshold:.3f}{screened_at}")
        if result is not None:
            version = f" v{result.model_version}" if result.model_version else ""
            # A result made by an earlier preparation of the film is kept (it may be what was
            # signed) but said: "Screen again" brings it up to date.
            earlier = f"\n{result.provenance}" if result.earlier_preparation else ""
            self.fields["Model"].setText(f"{result.model}{version}{earlier}")
            self.fields["Model"].setToolTip(f"Screened with {result.provenance}")
        else:
            self.fields["Model"].setText("-")
            self.fields["Model"].setToolTip("")
        self.fields["Truth"].setText(row.truth or "unknown")
        reader = getattr(row.decision, "reader", "")
        text = session.decision_text(row)
        self.fields["Reader"].setText((f"{text} ({reader})" if reader else text) if text else "no decision")
        self.fields["Status"].setText(status_text(row))
        meta = (result.meta if result is not None else None) or {}
        if (row.key, meta) != self._meta_shown:  # rebuilt only when it changes (refreshes are frequent)
            self._set_meta(meta)
            self._meta_shown = (row.key, meta)
        self.meta_box.setTitle("DICOM" if result is not None and result.kind == "dicom" else "File")

    def _set_meta(self, meta: dict) -> None:
        while self._meta_form.rowCount():
            self._meta_form.removeRow(0)
        for key, value in meta.items():
            text = format_study_date(value) if key == "StudyDate" else breakable(_short(value))
            label = _wrapping_label(self.meta_box)
            label.setText(text)
            label.setToolTip(str(value))
            self._meta_form.addRow(f"{key}:", label)
        self.meta_box.setVisible(bool(meta))

    def set_history(self, decisions) -> None:
        self.history_lines = [describe_history_entry(d) for d in decisions]
        self.history.setText("\n".join(breakable(line) if len(line.split()) < 2 else line for line in self.history_lines)
                             if self.history_lines else "No decisions yet")
