"""``FILE.report.png``: the report at a glance — the chosen file among the alternatives tried (speed against
held-out quality), its quality per judged clip beside bicubic upscaling's, and the width it kept in every layer.

Drawn with OpenCV (core stays free of Qt, and the report must be written by the headless command)."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np

from ..io.output import write_bytes

W, H = 1280, 820
INK, GREY, LIGHT = (30, 30, 30), (150, 150, 150), (225, 225, 225)
CHOSEN, OTHER, BICUBIC = (40, 120, 220), (120, 170, 120), (60, 60, 200)     # BGR
FONT = cv2.FONT_HERSHEY_SIMPLEX


def _text(img: np.ndarray, text: str, at: tuple[int, int], scale: float = 0.5, color=INK, bold: bool = False) -> None:
    cv2.putText(img, text, at, FONT, scale, color, 2 if bold else 1, cv2.LINE_AA)


class _Axes:
    """A plot box mapping data ranges to pixels."""

    def __init__(self, img: np.ndarray, box: tuple[int, int, int, int], xr: tuple[float, float],
                 yr: tuple[float, float], title: str, xlabel: str, ylabel: str) -> None:
        self.img, (self.x0, self.y0, self.x1, self.y1) = img, box
        self.xr, self.yr = xr, yr
        cv2.rectangle(img, (self.x0, self.y0), (self.x1, self.y1), GREY, 1)
        _text(img, title, (self.x0, self.y0 - 12), 0.55, bold=True)
        _text(img, xlabel, ((self.x0 + self.x1) // 2 - 4 * len(xlabel), self.y1 + 38), 0.45)
        for frac in (0.0, 0.5, 1.0):
            y = yr[0] + frac * (yr[1] - yr[0])
            py = self.py(y)
            cv2.line(img, (self.x0, py), (self.x1, py), LIGHT, 1)
            _text(img, f"{y:.1f}", (self.x0 - 48, py + 5), 0.42)
        _text(img, ylabel, (self.x0, self.y1 + 58), 0.42, GREY)
        if xlabel:                                     # numeric x axis: three ticks
            for frac in (0.0, 0.5, 1.0):
                x = xr[0] + frac * (xr[1] - xr[0])
                _text(img, f"{x:.1f}", (self.px(x) - 12, self.y1 + 18), 0.42)

    def px(self, x: float) -> int:
        return int(self.x0 + (x - self.xr[0]) / max(self.xr[1] - self.xr[0], 1e-9) * (self.x1 - self.x0))

    def py(self, y: float) -> int:
        return int(self.y1 - (y - self.yr[0]) / max(self.yr[1] - self.yr[0], 1e-9) * (self.y1 - self.y0))


def _range(values: Iterable[float], pad: float) -> tuple[float, float]:
    v = [x for x in values if np.isfinite(x)]
    lo, hi = (min(v), max(v)) if v else (0.0, 1.0)
    return lo - pad, hi + pad


def _frontier(img: np.ndarray, result) -> None:
    tried = result.tried
    quality = [np.mean([q.vs_dense_db for q in c.quality]) for c in tried]
    bicubic = float(np.mean([q.bicubic_vs_dense_db for q in result.chosen.quality]))
    speeds = [c.speed.speedup for c in tried] + [result.speedup_asked, 1.0]
    ax = _Axes(img, (90, 120, 600, 440), _range(speeds, 0.5), _range([*quality, bicubic], 1.0),
               "Alternatives tried: speed vs quality on held-out frames", "speed-up vs dense fp32 (measured here)",
               "dB Y-PSNR vs the dense network's output (mean over judged clips)")
    y = ax.py(bicubic)
    cv2.line(img, (ax.x0, y), (ax.x1, y), BICUBIC, 1, cv2.LINE_AA)
    _text(img, "bicubic", (ax.x1 - 70, y - 6), 0.42, BICUBIC)
    x = ax.px(result.speedup_asked)
    cv2.line(img, (x, ax.y0), (x, ax.y1), GREY, 1, cv2.LINE_AA)
    _text(img, f"asked {result.speedup_asked:.1f}x", (x + 4, ax.y1 - 24), 0.42, GREY)
    for c, q in zip(tried, quality):
        color = CHOSEN if c is result.chosen else OTHER
        p = (ax.px(c.speed.speedup), ax.py(q))
        cv2.circle(img, p, 7, color, -1, cv2.LINE_AA)
        _text(img, c.plan.rung.name, (p[0] + 10, p[1] - 8), 0.4, color)


def _per_clip(img: np.ndarray, result) -> None:
    quality = result.chosen.quality
    values = [v for q in quality for v in (q.vs_dense_db, q.bicubic_vs_dense_db)]
    ax = _Axes(img, (720, 120, 1230, 440), (0, len(quality)), _range(values, 1.0),
               "Held-out quality per clip: the file and bicubic", "", "dB Y-PSNR vs the dense network's output")
    width = (ax.x1 - ax.x0) / max(len(quality), 1)
    for i, q in enumerate(quality):
        left = int(ax.x0 + i * width + width * 0.15)
        for j, (value, color) in enumerate(((q.vs_dense_db, CHOSEN), (q.bicubic_vs_dense_db, BICUBIC))):
            x = left + int(j * width * 0.35)
            cv2.rectangle(img, (x, ax.py(value)), (x + int(width * 0.3), ax.y1), color, -1)
            _text(img, f"{value:.1f}", (x, ax.py(value) - 5), 0.4)
        _text(img, f"{q.kind[:5]} {q.name}"[:28], (left, ax.y1 + 18), 0.4)
    _text(img, "file", (ax.x1 - 120, ax.y0 + 18), 0.42, CHOSEN)
    _text(img, "bicubic", (ax.x1 - 70, ax.y0 + 18), 0.42, BICUBIC)


def _widths(img: np.ndarray, layers: Sequence) -> None:
    ax = _Axes(img, (90, 560, 1230, 760), (0, max(len(layers), 1)), (0.0, 1.0),
               "Width kept per layer (fraction of its units)", "", "")
    if not layers:
        _text(img, "no cut: every layer keeps its full width", (ax.x0 + 20, ax.y0 + 40), 0.5)
        return
    step = (ax.x1 - ax.x0) / len(layers)
    for i, layer in enumerate(layers):
        x = int(ax.x0 + i * step)
        cv2.rectangle(img, (x, ax.py(layer.n_kept / layer.total)), (max(x + int(step) - 1, x), ax.y1), CHOSEN, -1)
    marks = {0: layers[0].name, len(layers) // 2: layers[len(layers) // 2].name, len(layers) - 1: layers[-1].name}
    for i, name in marks.items():
        _text(img, name, (min(int(ax.x0 + i * step), ax.x1 - 8 * len(name)), ax.y1 + 18), 0.4)


def render(result) -> np.ndarray:
    """The picture as a BGR array."""
    img = np.full((H, W, 3), 255, np.uint8)
    c = result.chosen
    guard = c.guard
    _text(img, f"{result.outputs['onnx'].name}: {c.plan.rung.name}, {c.speed.speedup:.2f}x the dense network at "
               f"{c.speed.size[0]}x{c.speed.size[1]} ({c.speed.model_median_ms:.0f} vs {c.speed.dense_median_ms:.0f} "
               f"ms per frame)", (20, 36), 0.62, bold=True)
    _text(img, f"int8 guard: predicted drop {guard.charged_drop:.2f} dB (budget {guard.max_drop:.2f}), "
               f"{len(guard.kept_float)} layers kept float; CPU-seconds {result.cpu_seconds:.0f}; "
               f"footage {result.footage.source}, calibration frames [0, {len(result.footage.calibration)})",
          (20, 66), 0.5)
    _frontier(img, result)
    _per_clip(img, result)
    _widths(img, [] if c.plan.plan is None else c.plan.plan.layers)
    return img


def write_picture(path: str | Path, result, **kwargs) -> Path:
    """Render and write the PNG under the output rule (keyword arguments as ``core.io.output.staged_file``)."""
    ok, data = cv2.imencode(".png", render(result))
    if not ok:
        raise RuntimeError("OpenCV could not encode the report picture")
    return write_bytes(path, data.tobytes(), **kwargs)
