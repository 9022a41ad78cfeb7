"""A dependency-free progress display on stderr for the headless CLI.

On a terminal it redraws one bar line. On anything else (a pipe, a log file, a CI job) it prints plain lines,
so a long job that is not watched on a terminal still shows that it moves: one line each time the work enters
another of ``LINE_BANDS`` equal parts of the total (5 %: a steady step, never a flood, whatever a step costs), and
one at least every ``LINE_MAX_S`` seconds while it advances. A job that ends within ``LINE_MIN_S`` prints nothing;
one that printed lines ends with a last line at 100 %. No ETA is shown before 5 % of the work (``core.events.eta_seconds``).

Why not tqdm: off a terminal it still writes carriage-return redraws into the file (or, disabled, nothing at all);
a log read later wants a plain line per 5 % and one at least every 30 s, which is this module's whole job.
"""
from __future__ import annotations

import sys
import time
from typing import TextIO

from .events import eta_seconds


class ProgressBar:
    """``bar(done, total)`` redraws one line (terminal) or prints a plain line now and then (anything else)."""

    LINE_BANDS = 20           # plain lines: one as the work enters each 5 % of the total ...
    LINE_MIN_S = 2.0          # ... none before this much time has passed (a quick job prints nothing) ...
    LINE_MAX_S = 30.0         # ... and at least this often while the work advances

    def __init__(self, label: str, stream: TextIO | None = None, enabled: bool | None = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = True if enabled is None else enabled
        self.tty = _isatty(self.stream)
        self.start = time.perf_counter()
        self._last = 0.0
        self._drawn = False
        self._line_at = self.start         # plain lines: when the last one was printed ...
        self._line_frac = 0.0              # ... at what fraction of the work ...
        self._line_band = 0                # ... and in which of the LINE_BANDS parts
        self._lines = 0
        self._last_done = -1

    def __call__(self, done: int, total: int, extra: str = "") -> None:
        if not self.enabled:
            return
        if self.tty:
            self._redraw(done, total, extra)
        else:
            self._line(done, total, extra)

    def _eta(self, done: int, total: int, now: float) -> tuple[float, float | None]:
        elapsed = now - self.start
        return elapsed, eta_seconds(elapsed, done, total)

    def _redraw(self, done: int, total: int, extra: str) -> None:
        now = time.perf_counter()
        if done < total and now - self._last < 0.1:
            return
        self._last = now
        elapsed, eta = self._eta(done, total, now)
        frac = done / total if total else 1.0
        width = 28
        fill = int(round(frac * width))
        eta_txt = f"ETA {eta:5.0f}s" if eta is not None and done < total else f"{elapsed:5.1f}s"
        line = f"\r{self.label} [{'#' * fill}{'.' * (width - fill)}] {done}/{total} {eta_txt} {extra}"
        self.stream.write(line[:160])
        self.stream.flush()
        self._drawn = True

    def _line(self, done: int, total: int, extra: str) -> None:
        now = time.perf_counter()
        frac = done / total if total else 1.0
        finished = done >= total
        since = now - self._line_at
        if done == self._last_done and not finished:
            return
        self._last_done = done
        band = done * self.LINE_BANDS // total if total else self.LINE_BANDS
        due = now - self.start >= self.LINE_MIN_S and (band > self._line_band or since >= self.LINE_MAX_S)
        if not (due or (finished and self._lines and frac > self._line_frac)):
            return
        self._line_at, self._line_frac, self._line_band = now, frac, band
        self._lines += 1
        elapsed, eta = self._eta(done, total, now)
        when = f"{elapsed:.0f} s, ETA {eta:.0f} s" if eta is not None and not finished else f"{elapsed:.0f} s"
        text = f"{self.label}: {done}/{total} ({100 * frac:.0f} %), {when}" + (f", {extra}" if extra else "")
        self.stream.write(text[:200] + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):          # no isatty, or a closed stream
        return False
