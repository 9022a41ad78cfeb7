"""The Compare step's frame viewer: LR (bicubic) | dense | pruned | GT side by side, a wipe between any two or their
difference, a frame scrubber with play, and the view saved as a PNG. It shows the frames the comparison's stores
hold so far (``CompareResult``); a frame not computed yet says so.
"""
from __future__ import annotations

import math
from typing import Callable

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (QComboBox, QFileDialog, QHBoxLayout, QLabel, QPushButton, QSlider, QToolButton,
                               QVBoxLayout, QWidget)

from core.errors import UserError

from ..figures import REFERENCE_TEXT
from ..state import AppState
from ..widgets.image_views import VIEWS, ComparisonView

MODE_LABELS = {"side": "Side by side", "wipe": "Wipe A | B", "diff": "Difference |A − B|"}
PLAY_FPS = 8


class FrameViewer(QWidget):
    """The view bar (mode, A, B, split, save), the images (``view``) and the scrubber (``frame_slider``)."""

    frameShown = Signal(int)           # the index of the frame shown now

    def __init__(self, state: AppState, running: Callable[[], bool], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self._running = running
        self.mode = QComboBox()
        for key, label in MODE_LABELS.items():
            self.mode.addItem(label, key)
        self.a, self.b = QComboBox(), QComboBox()
        self.a.addItems(VIEWS)
        self.b.addItems(VIEWS)
        self.a.setCurrentIndex(1)
        self.b.setCurrentIndex(2)
        self.wipe = QSlider(Qt.Orientation.Horizontal)
        self.wipe.setRange(0, 1000)
        self.wipe.setValue(500)
        self.wipe.setToolTip("Split position between A (left) and B (right)")
        self.save_button = QPushButton("Save view as PNG…")
        self.view = ComparisonView()
        self.frame_slider = QSlider(Qt.Orientation.Horizontal)
        self.play_button = QToolButton()
        self.play_button.setText("▶")
        self.play_button.setCheckable(True)
        self.play_button.setToolTip("Play / pause (Space)")
        self.frame_label = QLabel("frame –")
        self.play_timer = QTimer(self)
        self.play_timer.setInterval(1000 // PLAY_FPS)
        view_bar = QHBoxLayout()
        view_bar.addWidget(QLabel("View"))
        view_bar.addWidget(self.mode)
        view_bar.addWidget(QLabel("A"))
        view_bar.addWidget(self.a)
        view_bar.addWidget(QLabel("B"))
        view_bar.addWidget(self.b)
        view_bar.addWidget(QLabel("split"))
        view_bar.addWidget(self.wipe, 1)
        view_bar.addWidget(self.save_button)
        scrub = QHBoxLayout()
        scrub.addWidget(self.play_button)
        scrub.addWidget(self.frame_slider, 1)
        scrub.addWidget(self.frame_label)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(view_bar)
        layout.addWidget(self.view, 1)
        layout.addLayout(scrub)
        for w in (self.mode, self.a, self.b):
            w.currentIndexChanged.connect(self._mode_changed)
        self.wipe.valueChanged.connect(lambda v: self.view.set_wipe(v / 1000))
        self.view.wipeMoved.connect(self._sync_wipe_slider)
        self.frame_slider.valueChanged.connect(self.show_frame)
        self.play_button.toggled.connect(self._toggle_play)
        self.play_timer.timeout.connect(self._next_frame)
        self.save_button.clicked.connect(lambda: self.save_view())
        self._mode_changed()

    def show_frame(self, index: int) -> None:
        clip = self.state.clip
        if clip is None:
            return
        index = min(max(index, 0), len(clip) - 1)
        r = self.state.compare
        outputs = r.outputs if r is not None else {}
        frames = {"LR (bicubic)": r.bicubic.get(index) if r is not None else None,
                  "Dense SR": outputs["dense"].get(index) if "dense" in outputs else None,
                  "Pruned SR": outputs["pruned"].get(index) if "pruned" in outputs else None,
                  "GT": clip.gt[index] if clip.gt is not None else None}
        running = {view: "not computed yet" for view, series in (("LR (bicubic)", "bicubic"), ("Dense SR", "dense"),
                                                                 ("Pruned SR", "pruned"))
                   if self._running() and r is not None and (series == "bicubic" or series in outputs)}
        self.view.set_frames(frames, running)
        label = f"frame {index + 1}/{len(clip)}"
        if r is not None:
            parts = [f"{n} {r.psnr[n][index]:.2f}" for n in ("dense", "pruned") if n in r.psnr
                     and index < len(r.psnr[n]) and math.isfinite(r.psnr[n][index])]
            if parts:
                label += " · PSNR " + ", ".join(parts) + f" dB {REFERENCE_TEXT.get(r.reference, '')}"
        self.frame_label.setText(label)
        self.frameShown.emit(index)

    def _mode_changed(self) -> None:
        mode = self.mode.currentData()
        for w in (self.a, self.b, self.wipe):
            w.setEnabled(mode != "side")
        self.view.set_mode(mode, self.a.currentText(), self.b.currentText())
        self.view.set_wipe(self.wipe.value() / 1000)

    def _sync_wipe_slider(self, fraction: float) -> None:
        self.wipe.blockSignals(True)
        self.wipe.setValue(round(fraction * 1000))
        self.wipe.blockSignals(False)

    def _toggle_play(self, playing: bool) -> None:
        self.play_button.setText("⏸" if playing else "▶")
        if playing:
            self.play_timer.start()
        else:
            self.play_timer.stop()

    def _next_frame(self) -> None:
        n = self.frame_slider.maximum() + 1
        self.frame_slider.setValue((self.frame_slider.value() + 1) % max(n, 1))

    def save_view(self, path: str | None = None) -> bool:
        """Write what the view shows now to a PNG (asks for a file name when none is given)."""
        confirmed = not path      # the file dialog asks before replacing a file
        if not path:
            path, _ = QFileDialog.getSaveFileName(self, "Save view as PNG", "comparison.png", "PNG image (*.png)")
            if not path:
                return False
        try:
            self.view.save_png(path, overwrite=confirmed)
        except UserError as exc:
            self.state.message.emit(f"could not write {path}: {exc}")
            return False
        self.state.message.emit(f"saved view to {path}")
        return True
