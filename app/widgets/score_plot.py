"""Histogram of all unit scores (log scale) with the global threshold that the current ratio implies.

Units left of the line are the ones the global ranking prunes (before per-layer floors, locks and caps).
"""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg

from core.ssl import REGISTRY, UnitScores

from .palette import SERIES_COLORS

BINS = 60
LABEL_GAP = 0.1      # the threshold label's gap from its line, a fraction of the label's width


class ScoreDistribution(pg.PlotWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setMenuEnabled(False)
        self.setMouseEnabled(x=False, y=False)
        self.hideButtons()
        self.setLabel("left", "units")
        self._hist = pg.PlotDataItem(stepMode="center", fillLevel=0, brush=pg.mkBrush(59, 125, 216, 120),
                                     pen=pg.mkPen(SERIES_COLORS["dense"]))
        self._region = pg.LinearRegionItem(movable=False, brush=pg.mkBrush(217, 83, 79, 50),
                                           pen=pg.mkPen(None))
        # The label hangs below the top edge (centred on it, half was cut off), a gap away from the line on the
        # side facing the plot's centre (pyqtgraph takes the first anchor while the line is left of the centre),
        # so it stays inside at either end of the ratio range; the fill keeps it readable over the bars.
        self._line = pg.InfiniteLine(angle=90, pen=pg.mkPen(SERIES_COLORS["pruned"], width=2),
                                     label="threshold", labelOpts={"position": 0.97, "color": SERIES_COLORS["pruned"],
                                                                    "anchors": [(-LABEL_GAP, 0), (1 + LABEL_GAP, 0)],
                                                                    "fill": pg.mkBrush(255, 255, 255, 220)})
        for item in (self._hist, self._region, self._line):
            self.addItem(item)
        self._low = 0.0
        self.threshold: float = math.nan

    def set_scores(self, scores: UnitScores | None) -> None:
        """Bin the scores once per model and criterion (log10, because L1 norms span decades)."""
        if scores is None:
            self._hist.setData([], [])
            return
        flat = scores.flat
        positive = flat[flat > 0]
        floor = positive.min() if positive.size else 1e-12
        values = np.log10(np.maximum(flat, floor))
        lo, hi = float(values.min()), float(values.max())
        if hi - lo < 1e-6:                       # every score equal (γ = 1 before any training)
            lo, hi = lo - 0.5, hi + 0.5
        counts, edges = np.histogram(values, bins=BINS, range=(lo, hi))
        self._hist.setData(edges, counts)
        self._low = lo
        # The criterion's own measure (its registry entry): "|γ|" under an L1 ranking was a wrong axis.
        criterion = REGISTRY.get(scores.criterion)
        self.setLabel("bottom", f"log10 of each unit's {criterion.axis_label if criterion else 'score'}")
        self.setXRange(lo, hi, padding=0.02)

    def set_threshold(self, threshold: float) -> None:
        """Move the line; NaN (nothing pruned) hides it."""
        self.threshold = threshold
        visible = math.isfinite(threshold) and threshold > 0
        self._line.setVisible(visible)
        self._region.setVisible(visible)
        if visible:
            x = math.log10(threshold)
            self._line.setPos(x)
            self._region.setRegion((self._low, x))
