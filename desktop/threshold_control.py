"""Decision threshold: a slider and a spin box kept in step."""
from __future__ import annotations

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import QDoubleSpinBox, QHBoxLayout, QLabel, QSlider, QWidget


class ThresholdControl(QWidget):
    threshold_changed = Signal(float)

    def __init__(self, value: float = 0.5, parent=None, decimals: int = 3,
                 minimum: float = 0.001, maximum: float = 0.999):
        super().__init__(parent)
        self._minimum, self._maximum = minimum, maximum
        self._steps = 10 ** decimals  # slider resolution matches the spin box's
        self.slider = QSlider(Qt.Orientation.Horizontal, self)
        self.slider.setRange(round(minimum * self._steps), round(maximum * self._steps))
        self.slider.setMinimumWidth(140)
        self.spin = QDoubleSpinBox(self)
        self.spin.setRange(minimum, maximum)
        self.spin.setDecimals(decimals)
        self.spin.setMaximumWidth(90)
        self.spin.setSingleStep(0.01)
        self.spin.setKeyboardTracking(False)  # typing "0.35" must not fire at "0.3"
        tip = ("Decision threshold: probability at or above it is an AI positive. "
               "Changing it re-labels every image without re-running the model.")
        self.setToolTip(tip)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 0)
        layout.addWidget(QLabel("Threshold", self))
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.spin)
        self._value = -1.0
        self.set_value(value, emit=False)
        self.slider.valueChanged.connect(lambda steps: self.set_value(steps / self._steps))
        self.spin.valueChanged.connect(self.set_value)

    def value(self) -> float:
        return self._value

    def set_value(self, value: float, emit: bool = True) -> None:
        # Keep the exact value (a model card's threshold has 6 decimals: rounding it
        # up to the spin box's 3 could drop a positive); only the display rounds.
        value = min(self._maximum, max(self._minimum, float(value)))
        if value == self._value:
            return
        self._value = value
        with QSignalBlocker(self.slider), QSignalBlocker(self.spin):
            self.slider.setValue(round(value * self._steps))
            self.spin.setValue(value)
        if emit:
            self.threshold_changed.emit(value)
