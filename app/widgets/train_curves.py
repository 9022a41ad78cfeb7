"""Live training curves: loss terms, λ, mean |γ| of pruned vs kept units, validation PSNR (with horizontal
reference lines for the dense network and bicubic upscaling on the same validation frames).

Events append to plain lists; the plots redraw at most five times a second, so a fast run cannot flood the
event loop with repaints.
"""
from __future__ import annotations

import math
from collections import defaultdict

import pyqtgraph as pg
from PySide6.QtCore import QTimer

from .palette import SERIES_COLORS

LOSS_COLORS = ("#3b7dd8", "#d9534f", "#2e9e6a", "#8e44ad", "#d9822b")
REDRAW_MS = 200
PSNR_TITLE = "Validation PSNR"
REFERENCE_COLORS = {"dense": SERIES_COLORS["dense"], "start network": SERIES_COLORS["dense"],
                    "bicubic": SERIES_COLORS["bicubic"]}


class LogAxis(pg.AxisItem):
    """A log axis that labels only the 1, 2, 5 steps of each decade, as plain numbers.

    pyqtgraph labels all nine minor ticks of a decade ("2·10¹ … 9·10¹") when a curve spans less than a few
    decades, as training losses do, and the labels pile onto each other.
    """

    def logTickStrings(self, values, scale, spacing):  # noqa: N802 (pyqtgraph's name)
        labels = []
        for v in values:
            x = 10.0 ** v * scale
            mantissa = x / 10.0 ** math.floor(math.log10(x)) if x > 0 else 0.0
            labels.append(f"{x:g}" if round(mantissa, 6) in (1.0, 2.0, 5.0) else "")
        return labels


class TrainingCurves(pg.GraphicsLayoutWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.loss_plot = self._plot(0, 0, "Loss terms", "loss", log_y=True)
        self.lambda_plot = self._plot(0, 1, "SIR penalty λ (layer mean)", "λ")
        self.gamma_plot = self._plot(1, 0, "Mean |γ|: to prune vs kept", "|γ|")
        self.psnr_plot = self._plot(1, 1, PSNR_TITLE, "dB")
        legend_brush = pg.mkBrush(255, 255, 255, 210)             # readable over the curves it covers
        self.gamma_plot.addLegend(offset=(-10, 10), brush=legend_brush)
        self.loss_plot.addLegend(offset=(-10, 10), brush=legend_brush)
        self._series: dict[str, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
        self._curves: dict[str, pg.PlotDataItem] = {}
        self._markers: list[pg.InfiniteLine] = []
        self._references: dict[str, pg.InfiniteLine] = {}
        self._reference_values: dict[str, float] = {}
        self._dirty = False
        self._placeholders: dict[pg.PlotItem, pg.TextItem] = {}
        self._sir_plots = (self.lambda_plot, self.gamma_plot)
        self._sir_expected = True
        self._show_placeholders()
        self._timer = QTimer(self)
        self._timer.setInterval(REDRAW_MS)
        self._timer.timeout.connect(self.redraw)
        self._timer.start()

    def _plot(self, row: int, col: int, title: str, unit: str, log_y: bool = False) -> pg.PlotItem:
        axes = {"left": LogAxis("left")} if log_y else None
        plot = self.addPlot(row=row, col=col, title=title, axisItems=axes)
        plot.setLabel("left", unit)
        plot.setLabel("bottom", "iteration")
        plot.showGrid(x=False, y=False)
        plot.setLogMode(y=log_y)
        plot.setMenuEnabled(False)
        return plot

    def _show_placeholders(self) -> None:
        """A line of text in each empty plot, so an idle chart does not look broken (and SIR's charts, in a run
        without SIR, say why they stay empty)."""
        for plot in (self.loss_plot, self.lambda_plot, self.gamma_plot, self.psnr_plot):
            if plot not in self._placeholders:
                idle = "no SIR stage in this run" if plot in self._sir_plots and not self._sir_expected else \
                    "no data yet"
                text = pg.TextItem(idle, color="#909090", anchor=(0.5, 0.5))
                plot.addItem(text, ignoreBounds=True)
                text.setPos(0.5, 0.5)
                self._placeholders[plot] = text

    def _drop_placeholder(self, plot: pg.PlotItem) -> None:
        text = self._placeholders.pop(plot, None)
        if text is not None:
            plot.removeItem(text)

    def clear_all(self, sir: bool = True) -> None:
        """Empty every chart for a new run; ``sir`` False: the run has no SIR stage (its two charts say so and
        get no stage markers)."""
        self._sir_expected = sir
        for plot in (self.loss_plot, self.lambda_plot, self.gamma_plot, self.psnr_plot):
            plot.clear()
            if plot.legend is not None:
                plot.legend.clear()
        self._placeholders.clear()          # plot.clear() removed them
        self._show_placeholders()
        self._series.clear()
        self._curves.clear()
        self._markers.clear()
        self._references.clear()
        self._reference_values.clear()
        self._dirty = False

    def set_references(self, values: dict[str, float], title: str | None = None) -> None:
        """Horizontal lines on the validation chart: ``{"dense": 24.9, "bicubic": 23.1}`` (dB); ``title``
        replaces the chart's (for a note such as "validated on the training frames")."""
        for line in self._references.values():
            self.psnr_plot.removeItem(line)
        self._references.clear()
        self._reference_values = dict(values)
        if values:
            self._drop_placeholder(self.psnr_plot)
        for name, value in values.items():
            color = REFERENCE_COLORS.get(name, "#555555")
            line = pg.InfiniteLine(value, angle=0, pen=pg.mkPen(color, width=1.5, style=pg.QtCore.Qt.PenStyle.DashLine),
                                   label=f"{name} {value:.2f} dB",
                                   # under the line, left of the middle: clear of the stage markers' labels (top)
                                   # and of the validation points (they come late in the run)
                                   labelOpts={"position": 0.2, "color": color, "anchors": [(0, 0), (0, 0)]})
            self.psnr_plot.addItem(line)
            self._references[name] = line
        self.psnr_plot.setTitle(title or PSNR_TITLE)
        self._fit_psnr_range()

    def references(self) -> dict[str, float]:
        return dict(self._reference_values)

    def _fit_psnr_range(self) -> None:
        """Keep the reference lines and the validation points in view (lines do not take part in auto-range)."""
        ys = list(self._reference_values.values())
        for key, (_, values) in self._series.items():
            if key.startswith("psnr"):
                ys += [v for v in values if math.isfinite(v)]
        if ys:
            lo, hi = min(ys), max(ys)
            pad = max(0.8, 0.15 * (hi - lo))        # room for the labels under the lowest line
            self.psnr_plot.setYRange(lo - pad, hi + pad, padding=0)

    def add(self, key: str, x: float, y: float) -> None:
        """Append one point to series ``key`` ('loss/charbonnier', 'lambda', 'gamma/pruned', 'psnr', ...)."""
        xs, ys = self._series[key]
        xs.append(x)
        ys.append(y)
        self._dirty = True

    def mark_stage(self, x: float, name: str) -> None:
        """A labelled vertical line where a stage starts, on every plot."""
        plots = (self.loss_plot, self.lambda_plot, self.gamma_plot, self.psnr_plot)
        for plot in plots if self._sir_expected else [p for p in plots if p not in self._sir_plots]:
            line = pg.InfiniteLine(x, angle=90, pen=pg.mkPen("#999999", style=pg.QtCore.Qt.PenStyle.DashLine),
                                   label=name, labelOpts={"position": 0.95, "color": "#555555"})
            plot.addItem(line)
            self._markers.append(line)

    def series(self, key: str) -> tuple[list[float], list[float]]:
        return self._series[key]

    def redraw(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        for key, (xs, ys) in self._series.items():
            curve = self._curves.get(key) or self._make_curve(key)
            curve.setData(xs, ys)
        if self._reference_values:
            self._fit_psnr_range()

    def _make_curve(self, key: str) -> pg.PlotDataItem:
        group, _, name = key.partition("/")
        self._drop_placeholder({"loss": self.loss_plot, "lambda": self.lambda_plot,
                                "gamma": self.gamma_plot}.get(group, self.psnr_plot))
        if group == "loss":
            n = sum(1 for k in self._curves if k.startswith("loss/"))
            curve = self.loss_plot.plot(pen=pg.mkPen(LOSS_COLORS[n % len(LOSS_COLORS)], width=1.5), name=name)
        elif group == "lambda":
            curve = self.lambda_plot.plot(pen=pg.mkPen(SERIES_COLORS["lambda"], width=2))
        elif group == "gamma":
            color = SERIES_COLORS["pruned_units" if name == "pruned" else "kept"]
            curve = self.gamma_plot.plot(pen=pg.mkPen(color, width=2), name=f"{name} units")
        else:
            curve = self.psnr_plot.plot(pen=pg.mkPen(SERIES_COLORS["psnr"], width=2), symbol="o", symbolSize=6,
                                        symbolBrush=SERIES_COLORS["psnr"], name=name or "PSNR")
        self._curves[key] = curve
        return curve
