"""The Study step's two charts: per-group sensitivity as bars, and a sweep as a Pareto front (the paper's Fig. 3).

Both draw a study result (plain data from core.study) and nothing else; the current plan is passed in by the
panel so the front can mark it live as the Prune step's slider moves.
"""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg

from core.study import SensitivityResult, SweepResult

from .palette import GROUP_COLORS, GROUP_LABELS, SERIES_COLORS

# Trunks a bar apart and tick names a point smaller than the app's font: at the window's default size the head's
# names (upconv1, upconv2) touched each other (the legend keeps the unit right of the last bar).
GROUP_GAP = 1.0
FRONT_COLOR = "#d9822b"
COST_LABELS = {"macs": "GMAC per LR frame (network without SpyNet)",
               "ms_per_frame": "measured ms per frame (streamed, network + engine)"}


def _short(name: str) -> str:
    """'backward.10-14' → 'B10-14', 'forward.3' → 'F3'; head layers keep their names."""
    for trunk, letter in (("backward.", "B"), ("forward.", "F")):
        if name.startswith(trunk):
            return letter + name[len(trunk):]
    return name


class SensitivityChart(pg.PlotWidget):
    """One bar per layer group, coloured by trunk; higher = more sensitive (with GT)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setMenuEnabled(False)
        self.setMouseEnabled(x=False, y=False)
        self.hideButtons()
        self.showGrid(y=True, alpha=0.25)
        self.addLegend(offset=(-10, 10))
        font = self.font()
        font.setPointSizeF(font.pointSizeF() - 1)
        self.getAxis("bottom").setStyle(tickFont=font)
        self.result: SensitivityResult | None = None
        self.values = np.zeros(0)

    def set_result(self, result: SensitivityResult | None) -> None:
        self.clear()
        if self.plotItem.legend is not None:
            self.plotItem.legend.clear()
        self.result = result
        if result is None:
            self.values = np.zeros(0)
            self.setTitle("")
            return
        xs, ticks, x, prev = [], [], 0.0, None
        for g in result.groups:
            if prev is not None and g.trunk != prev:
                x += GROUP_GAP
            xs.append(x)
            prev = g.trunk
            x += 1.0
        values = np.array([result.value(g) for g in result.groups], dtype=float)
        values[~np.isfinite(values)] = np.nan
        self.values = values
        trunks = [g.trunk for g in result.groups]
        for trunk in dict.fromkeys(trunks):
            mask = np.array([t == trunk for t in trunks])
            heights = np.nan_to_num(values[mask], nan=0.0)
            self.addItem(pg.BarGraphItem(x=np.array(xs)[mask], height=heights, width=0.8,
                                         brush=GROUP_COLORS.get(trunk, "#777777"), pen=pg.mkPen(None),
                                         name=GROUP_LABELS.get(trunk, trunk)))
        every = 1 if len(xs) <= 24 else 5
        ticks = [(xi, _short(g.name)) for i, (xi, g) in enumerate(zip(xs, result.groups))
                 if g.trunk == "head" and len(xs) <= 24 or i % every == 0 and g.trunk != "head"]
        self.getAxis("bottom").setTicks([ticks, []])
        self.setLabel("left", result.value_label)
        what = "layers" if result.granularity == "layer" else "B = backward trunk, F = forward trunk, blocks"
        self.setLabel("bottom", f"layer group ({result.granularity}: {what})")
        c = result.clip
        dense = f"; dense {result.dense_psnr:.2f} dB" if result.dense_psnr is not None else ""
        self.setTitle(f"Each group pruned alone at ratio {result.ratio:g} ({result.criterion}) — {c.name}, "
                      f"{c.frames} frames, against {c.reference}{dense}")
        finite = values[np.isfinite(values)]
        if finite.size:
            lo, hi = min(0.0, float(finite.min())), float(finite.max())
            self.setYRange(lo, hi + 0.08 * (hi - lo or 1.0), padding=0)
        self.setXRange(-1, x, padding=0.01)


class ParetoChart(pg.PlotWidget):
    """PSNR against cost for every network of a sweep; the front joined, dense and current plan marked."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setMenuEnabled(False)
        self.showGrid(x=True, y=True, alpha=0.25)
        # top left: the x axis starts at 0 and no network costs nothing, so no point sits there (bottom right, where
        # it was, is where the dense model and a flat front lie)
        self.addLegend(offset=(10, 10), brush=pg.mkBrush(255, 255, 255, 210))
        self.result: SweepResult | None = None
        self.cost = "macs"
        self.plan_cost: float | None = None        # the app's current plan, when the sweep did not measure it
        self.plan_label = ""
        self.front_x: list[float] = []

    def set_result(self, result: SweepResult | None, cost: str | None = None) -> None:
        self.result = result
        if cost is not None:
            self.cost = cost
        self.redraw()

    def set_current_plan(self, cost_value: float | None, label: str = "") -> None:
        """Mark the current plan's cost (in the chart's units) with a line; None removes the mark."""
        self.plan_cost, self.plan_label = cost_value, label
        self.redraw()

    def _x(self, value: float) -> float:
        return value / 1e9 if self.cost == "macs" else value

    def redraw(self) -> None:
        self.clear()
        if self.plotItem.legend is not None:
            self.plotItem.legend.clear()
        r = self.result
        if r is None:
            self.setTitle("")
            self.front_x = []
            return
        pts = [(self._x(getattr(p, self.cost)), p.psnr, p) for p in r.points]
        measured = [(x, y, p) for x, y, p in pts if math.isfinite(y)]
        front = r.front(self.cost)
        fx = [self._x(getattr(p, self.cost)) for p in front if math.isfinite(p.psnr)]
        fy = [p.psnr for p in front if math.isfinite(p.psnr)]
        self.front_x = fx
        self.addItem(pg.PlotDataItem(fx, fy, pen=pg.mkPen(FRONT_COLOR, width=2), name="Pareto front"))
        ratios = [(x, y) for x, y, p in measured if p.label.startswith("ratio")]
        if ratios:
            self.addItem(pg.ScatterPlotItem([x for x, _ in ratios], [y for _, y in ratios], size=10,
                                            brush=pg.mkBrush(SERIES_COLORS["pruned"]), pen=pg.mkPen(None),
                                            name="pruned (global ratio)"))
        xmax = max((x for x, _, _ in pts), default=0.0)
        for x, y, p in measured:
            if p.label == "dense":
                self.addItem(pg.ScatterPlotItem([x], [y], size=18, symbol="star", brush=pg.mkBrush(
                    SERIES_COLORS["dense"]), pen=pg.mkPen("#202020"), name="dense model"))
            elif not p.label.startswith("ratio"):
                self.addItem(pg.ScatterPlotItem([x], [y], size=14, symbol="d", brush=pg.mkBrush("#8e44ad"),
                                                pen=pg.mkPen("#202020"), name=p.label))
            right = xmax > 0 and x > 0.6 * xmax            # a long name near the right edge goes to the left
            text = pg.TextItem(p.label.replace("ratio ", "") if p.label.startswith("ratio") else p.label,
                               color="#303030", anchor=(1.05, 1.1) if right and not p.label.startswith("ratio")
                               else (-0.15, 1.1))
            text.setPos(x, y)
            self.addItem(text)
        dense = r.dense
        if not math.isfinite(dense.psnr):      # no GT: the dense model is the reference itself
            self.addItem(pg.InfiniteLine(self._x(getattr(dense, self.cost)), angle=90, label="dense (reference)",
                                         pen=pg.mkPen(SERIES_COLORS["dense"], width=2),
                                         labelOpts={"position": 0.9, "color": SERIES_COLORS["dense"]}))
        if self.plan_cost is not None and not any(p.label == "current plan" for p in r.points):
            self.addItem(pg.InfiniteLine(self.plan_cost, angle=90, label=self.plan_label,
                                         pen=pg.mkPen("#8e44ad", width=2, style=pg.QtCore.Qt.PenStyle.DashLine),
                                         labelOpts={"position": 0.12, "color": "#8e44ad", "anchors": [(0, 0), (0, 0)]}))
        self.setLabel("bottom", COST_LABELS[self.cost])
        self.setLabel("left", f"PSNR ({r.clip.channel}) vs {r.clip.reference}, dB")
        trained = ", each ratio after a short SIR + finetune" if r.training else ", zero-shot pruning"
        self.setTitle(f"Sweep on {r.clip.name} ({r.clip.frames} frames){trained}; widths multiple of {r.align}")
        xs = [x for x, _, _ in pts] + ([self.plan_cost] if self.plan_cost is not None else [])
        ys = [y for _, y, _ in measured]
        if xs and ys:
            self.setXRange(min(0.0, min(xs)), max(xs) * 1.12, padding=0.02)
            lo, hi = min(ys), max(ys)
            self.setYRange(lo - 0.05 * (hi - lo or 1.0), hi + 0.12 * (hi - lo or 1.0), padding=0)
