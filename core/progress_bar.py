"""A dependency-free progress bar on stderr for the headless CLI (quiet when stderr is not a terminal)."""
from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    """``bar(done, total)`` redraws one line: label, bar, counts, rate and ETA."""

    def __init__(self, label: str, stream: TextIO | None = None, enabled: bool | None = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.start = time.perf_counter()
        self._last = 0.0
        self._drawn = False

    def __call__(self, done: int, total: int, extra: str = "") -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if done < total and now - self._last < 0.1:
            return
        self._last = now
        elapsed = now - self.start
        frac = done / total if total else 1.0
        eta = elapsed / done * (total - done) if done else float("nan")
        width = 28
        fill = int(round(frac * width))
        eta_txt = f"ETA {eta:5.0f}s" if done and done < total else f"{elapsed:5.1f}s"
        line = f"\r{self.label} [{'#' * fill}{'.' * (width - fill)}] {done}/{total} {eta_txt} {extra}"
        self.stream.write(line[:160])
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
