"""Per-layer pruning ratios as bars, grouped backward trunk / forward trunk / head, redrawn on every slider move.

A second plan can be overlaid as outlined bars (e.g. the plan before SIR versus after, or two ratios). Hovering
a bar shows the layer, kept/total units and its ratio.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Signal
from PySide6.QtWidgets import QToolTip

from core.ssl import Plan

from .palette import GROUP_COLORS, GROUP_LABELS

GROUP_GAP = 4.0


class LayerChart(pg.PlotWidget):
    updated = Signal()                 # after the bars follow a new plan (the bench times this)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setMenuEnabled(False)
        self.setMouseEnabled(x=False, y=False)
        self.hideButtons()
        self.setLabel("left", "pruning ratio")
        self.setYRange(0, 1.0, padding=0.02)
        self.showGrid(y=True, alpha=0.25)
        self._names: tuple[str, ...] = ()
        self._x = np.zeros(0)
        self._x_end = 0.0                   # right end of the last bar group (data units)
        self._last_tick: tuple[float, str] | None = None
        self._plan: Plan | None = None
        self._reference: Plan | None = None
        # One single-colour item per (group, limited) pair: pyqtgraph then draws all its bars in one drawRects
        # call. Per-bar brushes take a per-rect wrapper path that crashed (none_dealloc) under fast slider sweeps.
        self._heights = np.zeros(0)
        self._groups = np.zeros(0, dtype=object)
        self._bar_items: dict[tuple[str, bool], pg.BarGraphItem] = {}
        self._overlay = pg.BarGraphItem(x=[], height=[], width=0.8, brush=None,
                                        pen=pg.mkPen("#202020", width=1.2))
        self._global = pg.InfiniteLine(angle=0, pen=pg.mkPen("#555555", style=pg.QtCore.Qt.PenStyle.DashLine))
        for item in (self._overlay, self._global):
            self.addItem(item)
        self._overlay.setVisible(False)
        self.scene().sigMouseMoved.connect(self._hover)
        self.plotItem.vb.sigResized.connect(self._fit_x)

    # -- data ---------------------------------------------------------------------------------------
    def set_plan(self, plan: Plan | None) -> None:
        """Show ``plan``'s ratios (cheap: only bar heights change while the layer set stays the same)."""
        self._plan = plan
        if plan is None:
            self._heights = np.zeros(0)
            for item in self._bar_items.values():
                item.setOpts(x=[], height=[])
            self._overlay.setVisible(False)
            self.updated.emit()
            return
        names = tuple(l.name for l in plan.layers)
        if names != self._names:
            self._layout(plan)
        self._heights = np.fromiter((l.ratio for l in plan.layers), float, len(plan.layers))
        limited = np.fromiter((l.limited for l in plan.layers), bool, len(plan.layers))
        for (group, is_limited), item in self._bar_items.items():
            mask = (self._groups == group) & (limited == is_limited)
            item.setOpts(x=self._x[mask], height=self._heights[mask])
        self._global.setPos(plan.requested_ratio)
        self._draw_reference()
        self.updated.emit()

    def set_reference(self, plan: Plan | None) -> None:
        """Overlay another plan (same network) as outlined bars; ``None`` removes it."""
        self._reference = plan
        self._draw_reference()

    @property
    def heights(self) -> np.ndarray:
        return self._heights

    def _draw_reference(self) -> None:
        ref = self._reference
        if ref is None or self._plan is None or tuple(l.name for l in ref.layers) != self._names:
            self._overlay.setVisible(False)
            return
        self._overlay.setOpts(x=self._x, height=[l.ratio for l in ref.layers])
        self._overlay.setVisible(True)

    def _layout(self, plan: Plan) -> None:
        self._names = tuple(l.name for l in plan.layers)
        xs, ticks, x, prev = [], [], 0.0, None
        starts: dict[str, float] = {}
        for l in plan.layers:
            if prev is not None and l.group != prev:
                x += GROUP_GAP
            starts.setdefault(l.group, x)
            xs.append(x)
            prev = l.group
            x += 1.0
        self._x = np.array(xs)
        groups = [l.group for l in plan.layers]
        for g, start in starts.items():
            end = max(xi for xi, gi in zip(xs, groups) if gi == g)
            n = groups.count(g)
            ticks.append(((start + end) / 2, f"{GROUP_LABELS.get(g, g)} ({n})"))
        self.getAxis("bottom").setTicks([ticks, []])
        self._groups = np.array(groups, dtype=object)
        for item in self._bar_items.values():
            self.removeItem(item)
        self._bar_items = {}
        for g in starts:
            for is_limited in (False, True):      # limited layers (a floor, lock or cap bound) are outlined
                pen = pg.mkPen("#000000", width=1.5) if is_limited else pg.mkPen(None)
                item = pg.BarGraphItem(x=[], height=[], width=0.8, brush=GROUP_COLORS.get(g, "#777777"), pen=pen)
                item.setZValue(-1)
                self.addItem(item)
                self._bar_items[(g, is_limited)] = item
        self._x_end, self._last_tick = x, ticks[-1] if ticks else None
        self._fit_x()

    def _fit_x(self) -> None:
        """Leave room right of the last group for its whole label: pyqtgraph drops a tick label that would run
        past the axis end, and a narrow chart (a 1280-pixel screen) lost "head (4)" that way."""
        if self._last_tick is None:
            return
        center, text = self._last_tick
        half = self.fontMetrics().horizontalAdvance(text) / 2 + 6          # pixels right of the tick
        width = max(self.plotItem.vb.width(), 1.0)
        left, span = -1.0, self._x_end + 1.0                              # data units before the margin
        # margin m (data units) so that (x_end + m - center) * width / (span + m) >= half
        need = (half * span - (self._x_end - center) * width) / max(width - half, 1.0)
        self.setXRange(left, self._x_end + max(GROUP_GAP, need), padding=0.01)

    # -- tooltips -----------------------------------------------------------------------------------
    def index_at(self, x: float) -> int | None:
        """The bar under data coordinate ``x`` (None between bars or groups)."""
        if not len(self._x):
            return None
        i = int(np.argmin(np.abs(self._x - x)))
        return i if abs(self._x[i] - x) <= 0.5 else None

    def tooltip(self, index: int) -> str:
        """'forward.3.mid (filter)\nkept 40/64 units, ratio 37.5%' plus the overlay's values if any."""
        l = self._plan.layers[index]
        text = f"{l.name} ({l.kind})\nkept {l.n_kept}/{l.total} units, ratio {l.ratio:.1%}"
        if l.limited:
            text += "\nlimited by a floor, lock or cap"
        if self._reference is not None and self._overlay.isVisible():
            r = self._reference.layers[index]
            text += f"\noverlay: kept {r.n_kept}/{r.total}, ratio {r.ratio:.1%}"
        return text

    def _hover(self, pos: QPointF) -> None:
        if self._plan is None or not self.plotItem.vb.sceneBoundingRect().contains(pos):
            return
        point = self.plotItem.vb.mapSceneToView(pos)
        i = self.index_at(point.x())
        if i is None or not 0 <= point.y() <= max(self._plan.layers[i].ratio, 0.05) + 0.05:
            QToolTip.hideText()
            return
        QToolTip.showText(self.mapToGlobal(self.mapFromScene(pos)), self.tooltip(i), self)
