"""Frames side by side with linked zoom and pan, a wipe between any two, and a difference heat-map.

All views share one camera (linked view boxes), so zooming one zooms all. Images are drawn without smoothing,
so zoomed-in pixels stay sharp squares (nearest neighbour) and artefacts are visible as they are.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QStackedWidget, QWidget

from core.io.output import OutputError, staged_file

VIEWS = ("LR (bicubic)", "Dense SR", "Pruned SR", "GT")
MODES = ("side", "wipe", "diff")
DIFF_LEVELS = (0.0, 32.0)          # |A−B| in 8-bit levels, mean over RGB
DIFF_MIN_TOP = 4.0                 # the colour scale never stretches below this many levels


def _image_box(layout: pg.GraphicsLayout, title: str, row: int, col: int) -> tuple[pg.ViewBox, pg.ImageItem, pg.LabelItem]:
    label = layout.addLabel(title, row=2 * row, col=col)
    box = layout.addViewBox(row=2 * row + 1, col=col, lockAspect=True, invertY=True, enableMenu=False)
    image = pg.ImageItem(axisOrder="row-major")
    box.addItem(image)
    return box, image, label


class ComparisonView(QStackedWidget):
    wipeMoved = Signal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.grid = pg.GraphicsLayoutWidget()
        self.single = pg.GraphicsLayoutWidget()
        self.boxes: dict[str, pg.ViewBox] = {}
        self.items: dict[str, pg.ImageItem] = {}
        self.titles: dict[str, pg.LabelItem] = {}
        for i, name in enumerate(VIEWS):
            box, image, label = _image_box(self.grid.ci, name, i // 2, i % 2)
            self.boxes[name], self.items[name], self.titles[name] = box, image, label
        self.single_box, self.wipe_item, self.single_title = _image_box(self.single.ci, "", 0, 0)
        self.diff_item = pg.ImageItem(axisOrder="row-major")
        self.single_box.addItem(self.diff_item)
        self.colorbar = pg.ColorBarItem(values=DIFF_LEVELS, colorMap=pg.colormap.get("inferno"), interactive=False,
                                        label="|A − B| (8-bit levels)", colorMapMenu=False)
        self.colorbar.setImageItem(self.diff_item, insert_in=None)
        self.single.ci.addItem(self.colorbar, row=1, col=1)
        self.wipe_line = pg.InfiniteLine(angle=90, movable=True, pen=pg.mkPen("#ffcc00", width=2))
        self.single_box.addItem(self.wipe_line)
        self.wipe_line.sigPositionChanged.connect(self._line_moved)
        master = self.boxes[VIEWS[0]]
        for box in [*list(self.boxes.values())[1:], self.single_box]:
            box.setXLink(master)
            box.setYLink(master)
        self.addWidget(self.grid)
        self.addWidget(self.single)
        self.frames: dict[str, np.ndarray | None] = {name: None for name in VIEWS}
        self.missing: dict[str, str] = {}
        self.mode, self.a, self.b, self.wipe = "side", VIEWS[1], VIEWS[2], 0.5
        self._shape: tuple[int, int] | None = None
        self._fit = True            # the camera shows the whole frame until the user zooms or pans
        for box in [*self.boxes.values(), self.single_box]:
            box.sigRangeChangedManually.connect(self._user_moved)

    # -- content ------------------------------------------------------------------------------------
    def set_frames(self, frames: dict[str, np.ndarray | None], missing: dict[str, str] | None = None) -> None:
        """One frame per view (missing ones show empty, titled with ``missing[name]`` or "not available"); the
        camera resets only when the size changes."""
        self.frames = {name: frames.get(name) for name in VIEWS}
        self.missing = dict(missing or {})
        shape = next((f.shape[:2] for f in self.frames.values() if f is not None), None)
        self._redraw()
        if shape is not None and shape != self._shape:
            self._shape = shape
            self.reset_zoom()

    def _user_moved(self, *_) -> None:
        self._fit = False

    def _active_box(self) -> pg.ViewBox:
        return self.boxes[VIEWS[0]] if self.mode == "side" else self.single_box

    def set_mode(self, mode: str, a: str | None = None, b: str | None = None) -> None:
        self.mode = mode
        self.a, self.b = a or self.a, b or self.b
        self.setCurrentWidget(self.grid if mode == "side" else self.single)
        self._redraw()
        self._refit_later()

    def set_wipe(self, fraction: float) -> None:
        self.wipe = min(max(fraction, 0.0), 1.0)
        if self._shape is not None:
            self.wipe_line.blockSignals(True)
            self.wipe_line.setPos(self.wipe * self._shape[1])
            self.wipe_line.blockSignals(False)
        if self.mode == "wipe":
            self._redraw()

    def reset_zoom(self) -> None:
        """Show whole frames again (and keep doing so on resizes until the user zooms or pans)."""
        self._fit = True
        if self._shape is not None:
            h, w = self._shape
            self._active_box().setRange(xRange=(0, w), yRange=(0, h), padding=0.0)

    def _refit_later(self) -> None:
        # Sizes are only final once the layout has run: fit after the event loop has laid the views out.
        if self._fit:
            QTimer.singleShot(0, self.reset_zoom)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._refit_later()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._refit_later()

    def zoom(self, factor: float) -> None:
        """Zoom every view about the centre (factor > 1 zooms in)."""
        self._fit = False
        self._active_box().scaleBy((1 / factor, 1 / factor))

    def save_png(self, path: str, overwrite: bool = False) -> bool:
        """Write what the view shows to ``path`` under the output rule (``overwrite``: the user confirmed)."""
        pixmap: QPixmap = self.currentWidget().grab()
        with staged_file(path, overwrite=overwrite) as tmp:
            if not pixmap.save(str(tmp), "PNG"):
                raise OutputError(f"cannot encode the view as PNG for {path}")
        return True

    # -- drawing ------------------------------------------------------------------------------------
    def _redraw(self) -> None:
        for name in VIEWS:
            frame = self.frames[name]
            if frame is None:
                self.items[name].clear()
                self.titles[name].setText(f"{name} — {self.missing.get(name, 'not available')}")
            else:
                self.items[name].setImage(frame, autoLevels=False, levels=(0, 255))
                self.titles[name].setText(name)
        if self.mode == "side":
            return
        a, b = self.frames[self.a], self.frames[self.b]
        if a is None or b is None or a.shape != b.shape:
            self.wipe_item.clear()
            self.diff_item.clear()
            absent = self.a if a is None else self.b
            self.single_title.setText(f"{absent} {self.missing.get(absent, 'not available')}"
                                      if a is None or b is None else "sizes differ")
            return
        if self.mode == "wipe":
            cut = int(round(self.wipe * a.shape[1]))
            out = b.copy()
            out[:, :cut] = a[:, :cut]
            self.wipe_item.setImage(out, autoLevels=False, levels=(0, 255))
            self.single_title.setText(f"◀ {self.a}   |   {self.b} ▶   (drag the yellow line)")
        else:
            diff = np.abs(a.astype(np.int16) - b.astype(np.int16)).mean(axis=2).astype(np.float32)
            top = max(DIFF_MIN_TOP, float(np.percentile(diff, 99)))   # 1% brightest saturate
            self.diff_item.setImage(diff, autoLevels=False, levels=(0.0, top))
            self.colorbar.setLevels((0.0, top))
            self.single_title.setText(f"|{self.a} − {self.b}|, mean {diff.mean():.2f}, max {diff.max():.0f}")
        self.wipe_item.setVisible(self.mode == "wipe")
        self.diff_item.setVisible(self.mode == "diff")
        self.wipe_line.setVisible(self.mode == "wipe")
        self.colorbar.setVisible(self.mode == "diff")

    def _line_moved(self) -> None:
        if self._shape is not None:
            self.wipe = min(max(self.wipe_line.value() / self._shape[1], 0.0), 1.0)
            self.wipeMoved.emit(self.wipe)
            self._redraw()
