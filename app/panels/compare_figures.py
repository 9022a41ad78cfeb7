"""The Compare step's figures: the per-frame Y-PSNR plot of every series, filled in as frames arrive, and each
model's Y-PSNR and time per frame (``app.figures``: the figures Export and Study show too) with what they cover
and whether another job of the app ran while they were timed.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QGroupBox, QLabel, QVBoxLayout

from ..figures import BICUBIC, REFERENCE_TEXT, clip_psnr, quality_note, timing_note
from ..formatting import ms
from ..state import AppState, CompareResult
from ..widgets.palette import SERIES_COLORS

MAX_MARKED_POINTS = 60      # longer PSNR series are drawn as lines only (300 markers a series slow each repaint)
LEGEND_HEADROOM = 0.35      # of the curves' span, kept free above them for the legend
IDLE_TEXT = "Run the comparison to measure the time per frame of each model."


class CompareFigures(QGroupBox):
    """“Quality and speed”: the plot (``plot``, one curve per series in ``curves``, the frame shown as
    ``frame_line``) above the figures (``timing``)."""

    def __init__(self, state: AppState, running: Callable[[], bool]) -> None:
        super().__init__("Quality and speed")
        self.state = state
        self._running = running
        self.timing = QLabel(IDLE_TEXT)
        self.timing.setWordWrap(True)
        self.plot = pg.PlotWidget()
        self.plot.setLabel("left", "PSNR (Y), dB")
        self.plot.setLabel("bottom", "frame")
        self.plot.addLegend(offset=(-10, 10), brush=pg.mkBrush(255, 255, 255, 210))    # readable over curves
        # No grid: pyqtgraph draws it inside the axes' picture, alpha-blended over the whole plot, and that paint
        # was the GUI's longest stall while a long comparison streamed (bench_gui --stall-stacks).
        self.plot.showGrid(x=False, y=False)
        self.curves = {name: self.plot.plot([], [], name=name, pen=pg.mkPen(SERIES_COLORS[name], width=2),
                                            symbol="o", symbolSize=4,
                                            symbolBrush=SERIES_COLORS[name], symbolPen=None)
                       for name in ("bicubic", "dense", "pruned")}
        self.frame_line = pg.InfiniteLine(angle=90, movable=True, pen=pg.mkPen("#555555"))
        self.plot.addItem(self.frame_line)
        layout = QVBoxLayout(self)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.timing)

    def set_frames(self, count: int) -> None:
        """A clip of ``count`` frames: the x axis is its frames, not an autoscaled ±500."""
        self.plot.setXRange(0, max(count - 1, 1), padding=0.02)

    def update_curves(self) -> None:
        r = self.state.compare
        shown: list[float] = []
        for name, curve in self.curves.items():
            values = list(r.psnr.get(name, [])) if r is not None else []
            symbol = "o" if len(values) <= MAX_MARKED_POINTS else None     # a marker per frame only on short clips
            if curve.opts["symbol"] != symbol:
                curve.setSymbol(symbol)
            curve.setData(np.arange(len(values)), np.asarray(values, dtype=float))
            shown += [v for v in values if math.isfinite(v)]
        if shown:       # headroom above the curves for the legend (top right), which covered the top curve
            lo, hi = min(shown), max(shown)
            span = max(hi - lo, 0.5)
            self.plot.setYRange(lo - 0.05 * span, hi + LEGEND_HEADROOM * span, padding=0)
        if r is not None and self._running() and not r.complete:
            done = {name: len(store) for name, store in (("bicubic", r.bicubic), *r.outputs.items())}
            self.timing.setText("Computing … frames done: " + ", ".join(f"{k} {v}/{len(r.clip)}"
                                                                      for k, v in done.items()))

    def show_result(self) -> None:
        """The curves, the axis label and the figures of the state's comparison (none: the idle line)."""
        r = self.state.compare
        self.update_curves()
        reference = REFERENCE_TEXT.get(r.reference if r is not None else "GT", "")
        self.plot.setLabel("left", f"PSNR (Y) {reference}, dB")
        if r is None:
            self.timing.setText(IDLE_TEXT)
        elif r.complete or not self._running():
            self.timing.setText(self.timing_text(r))

    def timing_text(self, r: CompareResult) -> str:
        """Each series' Y-PSNR and time per frame (``app.figures``: the figures Export and Study show too), and
        what they cover."""
        s = self.state
        now = {"dense": id(s.model.model) if s.model is not None else 0,
               "pruned": id(s.pruned.model) if s.pruned is not None else 0}
        lines = [] if r.complete else ["<b>stopped before the end</b> (figures over the frames done, not kept)"]
        if r.compared and r.compared != now:
            lines.append("<span style='color:#b36b00'><b>results of the previously loaded networks</b>: "
                         "run again to compare the current ones</span>")
        reference = REFERENCE_TEXT.get(r.reference, "")
        for name in (*r.outputs, BICUBIC):
            figure = r.figures.get(name)
            values = r.psnr.get(name)
            if figure is not None:
                quality = figure.psnr_text(unit=False) if figure.psnr is not None else None
            else:
                quality = f"{clip_psnr(values, r.reference):.2f}" if values else None
            parts = [f"{quality} dB"] if quality else []
            if figure is not None and figure.ms_per_frame is not None:
                parts.append(figure.ms_text())
            elif name in r.seconds_per_frame:
                parts.append(f"{ms(r.seconds_per_frame[name])}/frame")
            if name == "dense" and r.reference == "dense":
                parts.append("the reference")
            if parts:
                lines.append(f"<b>{name}</b>: " + " · ".join(parts))
        spf = r.seconds_per_frame
        contended = sorted({job for f in r.figures.values() for job in f.contended})
        if contended:
            lines.append(f"<span style='color:#b00020'><b>times not comparable</b>: "
                         f"{', '.join(contended)} ran while they were measured; run again</span>")
        if "dense" in spf and "pruned" in spf and spf["pruned"] > 0 and not contended:
            if r.lineage is not None and not r.lineage.comparable:
                lines.append("<span style='color:#b00020'><b>no speed-up shown</b>: the pruned model is not "
                             "derived from the dense one</span>")
            else:
                lines.append(f"measured speed-up ×{spf['dense'] / spf['pruned']:.2f}")
        lines.append(f"<span style='color:#555555'>{self._covers(r, reference)}</span>")
        return "<br>".join(lines)

    def _covers(self, r: CompareResult, reference: str) -> str:
        """What the figures above cover (frames, reference, what the time includes, threads, size)."""
        timed = next((f for f in r.figures.values() if f.ms_per_frame is not None), None)
        if r.complete:
            text = quality_note(r.reference, len(r.clip), r.clip.name)
        else:
            text = f"Y-PSNR {reference} on the frames done"
        if timed is not None:
            text += f". {timing_note(timed.timing_context)}"
        return text + "."
