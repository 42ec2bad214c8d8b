"""Decision threshold: a slider and a spin box kept in step."""
from __future__ import annotations

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import QDoubleSpinBox, QHBoxLayout, QLabel, QSlider, QWidget

_STEPS = 1000  # slider resolution: 0.001


class ThresholdControl(QWidget):
    threshold_changed = Signal(float)

    def __init__(self, value: float = 0.5, parent=None):
        super().__init__(parent)
        self.slider = QSlider(Qt.Orientation.Horizontal, self)
        self.slider.setRange(1, _STEPS - 1)
        self.slider.setMinimumWidth(140)
        self.slider.setMaximumWidth(320)
        self.spin = QDoubleSpinBox(self)
        self.spin.setRange(0.001, 0.999)
        self.spin.setDecimals(3)
        self.spin.setMaximumWidth(90)
        self.spin.setSingleStep(0.01)
        self.spin.setKeyboardTracking(False)  # typing "0.35" must not fire at "0.3"
        tip = ("Decision threshold: probability at or above it is an AI positive. "
               "Changing it re-labels every image without re-running the model.")
        self.setToolTip(tip)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 0)
        layout.addWidget(QLabel("Threshold", self))
        layout.addWidget(self.slider)
        layout.addWidget(self.spin)
        self._value = -1.0
        self.set_value(value, emit=False)
        self.slider.valueChanged.connect(lambda steps: self.set_value(steps / _STEPS))
        self.spin.valueChanged.connect(self.set_value)

    def value(self) -> float:
        return self._value

    def set_value(self, value: float, emit: bool = True) -> None:
        # Keep the exact value (a model card's threshold has 6 decimals: rounding it
        # up to the spin box's 3 could drop a positive); only the display rounds.
        value = min(0.999, max(0.001, float(value)))
        if value == self._value:
            return
        self._value = value
        with QSignalBlocker(self.slider), QSignalBlocker(self.spin):
            self.slider.setValue(round(value * _STEPS))
            self.spin.setValue(value)
        if emit:
            self.threshold_changed.emit(value)
