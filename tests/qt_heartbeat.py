"""An event-loop heartbeat for GUI tests: a QTimer every ~20 ms records how late each beat came.

Why: a person's window froze for 0.5–1.4 s during exports; a beat that comes late by more than 100 ms is such a
freeze, and the phase it happened in (``phase``) says which step caused it.

On a machine other processes keep busy (the 2-core test machine runs several suites at once) the GUI thread also
waits in the CPU's run queue, which no code of the app can cause or avoid; Linux counts that wait per thread
(``/proc/thread-self/schedstat``), and it is taken off each beat's lateness (``late``; ``raw`` keeps the wall
clock's).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QTimer

BEAT_MS = 20
SCHEDSTAT = Path("/proc/thread-self/schedstat")


def run_queue_ms() -> float:
    """Milliseconds this thread has waited for a CPU since it started (0 where the kernel does not say)."""
    try:
        return int(SCHEDSTAT.read_text().split()[1]) / 1e6
    except (OSError, IndexError, ValueError):
        return 0.0


@dataclass
class Heartbeat:
    """Start it, walk the app, read ``stalls(limit_ms)``: each (phase, ms late) over the limit."""

    phase: str = "start"
    late: list[tuple[str, float]] = field(default_factory=list)
    raw: list[tuple[str, float]] = field(default_factory=list)
    _last: float = 0.0
    _queued: float = 0.0
    _timer: QTimer | None = None

    def start(self) -> "Heartbeat":
        self._timer = QTimer()
        self._timer.setInterval(BEAT_MS)
        self._timer.timeout.connect(self._beat)
        self._last, self._queued = time.perf_counter(), run_queue_ms()
        self._timer.start()
        return self

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.stop()

    def _beat(self) -> None:
        now, queued = time.perf_counter(), run_queue_ms()
        raw = 1000 * (now - self._last) - BEAT_MS
        self.raw.append((self.phase, raw))
        self.late.append((self.phase, raw - (queued - self._queued)))
        self._last, self._queued = now, queued

    def stalls(self, limit_ms: float = 100.0) -> list[tuple[str, float]]:
        return [(phase, round(ms)) for phase, ms in self.late if ms > limit_ms]

    def worst(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for phase, ms in self.late:
            out[phase] = max(out.get(phase, 0.0), round(ms))
        return out
