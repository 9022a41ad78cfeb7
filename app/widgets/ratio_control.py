"""A global pruning-ratio slider (0–0.95) kept in step with a spin box; emits on every move while dragging."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QDoubleSpinBox, QHBoxLayout, QLabel, QSlider, QWidget

MAX_RATIO = 0.95
STEPS = 950                   # slider resolution: 0.001


class RatioControl(QWidget):
    ratioChanged = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, STEPS)
        self.slider.setPageStep(50)
        self.slider.setTracking(True)
        self.slider.setToolTip("Global pruning ratio: the share of all prunable units removed (PgUp/PgDn: ±0.05)")
        self.spin = QDoubleSpinBox()
        self.spin.setRange(0.0, MAX_RATIO)
        self.spin.setSingleStep(0.01)
        self.spin.setDecimals(3)
        self.spin.setKeyboardTracking(False)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(QLabel("Global ratio"))
        layout.addWidget(self.slider, 1)
        layout.addWidget(self.spin)
        self.slider.valueChanged.connect(self._from_slider)
        self.spin.valueChanged.connect(self._from_spin)

    def value(self) -> float:
        return round(self.spin.value(), 3)

    def set_value(self, ratio: float) -> None:
        self.spin.setValue(min(max(ratio, 0.0), MAX_RATIO))

    def _from_slider(self, step: int) -> None:
        ratio = step * MAX_RATIO / STEPS
        if abs(self.spin.value() - ratio) > 1e-9:
            self.spin.blockSignals(True)
            self.spin.setValue(ratio)
            self.spin.blockSignals(False)
        self.ratioChanged.emit(round(ratio, 3))

    def _from_spin(self, ratio: float) -> None:
        step = round(ratio * STEPS / MAX_RATIO)
        if self.slider.value() != step:
            self.slider.blockSignals(True)
            self.slider.setValue(step)
            self.slider.blockSignals(False)
        self.ratioChanged.emit(round(ratio, 3))
