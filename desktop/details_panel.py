"""Facts about the image on screen: AI result, model, DICOM attributes, reader history."""
from __future__ import annotations

from datetime import datetime

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QFormLayout, QGroupBox, QLabel, QListWidget, QVBoxLayout, QWidget)

from core.results import classify
from desktop.results_model import describe_decision, format_study_date


def _local_time(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return iso


def describe_history_entry(decision) -> str:
    text = f"{_local_time(decision.time)}  {describe_decision(decision)}"
    prob = "" if decision.probability is None else f", p={decision.probability:.3f}"
    text += f"  (AI {decision.ai_call or '-'} at t={decision.threshold:.2f}{prob}; {decision.model})"
    return text + ("  [undone]" if decision.undone else "")


class DetailsPanel(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        result_box = QGroupBox("AI result", self)
        self._form = QFormLayout(result_box)
        self.fields: dict[str, QLabel] = {}
        for name in ("File", "Probability", "AI call", "Threshold", "Model", "Truth", "Reader", "Status"):
            label = QLabel("-", result_box)
            label.setTextFormat(Qt.TextFormat.PlainText)  # file names are not markup
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self._form.addRow(f"{name}:", label)
            self.fields[name] = label

        meta_box = QGroupBox("DICOM", self)
        self._meta_form = QFormLayout(meta_box)
        self.meta_box = meta_box

        history_box = QGroupBox("Reader decisions", self)
        self.history = QListWidget(history_box)
        QVBoxLayout(history_box).addWidget(self.history)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(result_box)
        layout.addWidget(meta_box)
        layout.addWidget(history_box, 1)
        self.clear()

    def clear(self) -> None:
        for label in self.fields.values():
            label.setText("-")
        self._set_meta({})
        self.history.clear()

    def show_row(self, row, threshold: float) -> None:
        result = row.result
        self.fields["File"].setText(row.file)
        self.fields["Probability"].setText("-" if result.probability is None else f"{result.probability:.4f}")
        self.fields["AI call"].setText(classify(row.probability, threshold) or "-")
        self.fields["Threshold"].setText(f"{threshold:.2f} (screened at {result.threshold:.2f})")
        version = f" v{result.model_version}" if result.model_version else ""
        self.fields["Model"].setText(f"{result.model}{version}")
        self.fields["Truth"].setText(row.truth or "unknown")
        self.fields["Reader"].setText(describe_decision(row.decision) or "no decision")
        self.fields["Status"].setText(f"Error: {result.error}" if result.error else "Screened")
        self._set_meta(result.meta or {})
        self.meta_box.setTitle("DICOM" if result.kind == "dicom" else "Image")

    def _set_meta(self, meta: dict) -> None:
        while self._meta_form.rowCount():
            self._meta_form.removeRow(0)
        for key, value in meta.items():
            text = format_study_date(value) if key == "StudyDate" else str(value)
            value_label = QLabel(text)
            value_label.setTextFormat(Qt.TextFormat.PlainText)  # DICOM text is data, never markup
            self._meta_form.addRow(f"{key}:", value_label)
        self.meta_box.setVisible(bool(meta))

    def set_history(self, decisions) -> None:
        self.history.clear()
        for decision in decisions:
            self.history.addItem(describe_history_entry(decision))
        if not decisions:
            self.history.addItem("No decisions yet")
