"""An event-loop heartbeat for GUI tests: a QTimer every ~20 ms records how late each beat came, and why.

Why: a person's window froze for 0.5–1.4 s during exports; a beat that comes late by more than 100 ms is such a
freeze, and the phase it happened in (``phase``) says which step caused it.

A late beat has three causes, told apart per beat because the beat runs on the GUI thread:
- the GUI thread waited in the CPU's run queue while other processes held the CPUs (the 2-core test machine runs
  several suites at once): no code of the app can cause or avoid it; Linux counts it per thread
  (``/proc/thread-self/schedstat``) and it is taken off the wall clock's lateness (``raw``) to give ``late``;
- the GUI thread ran: painting, layout, slots (``gui_cpu``, the thread's own CPU time) — a step's first paint of
  its charts costs tens of ms, more while a worker shares the core; heavy work on the GUI thread shows here
  (``busy``);
- the GUI thread neither ran nor queued: it waited for the GIL, a lock or a pipe that work off the GUI thread held
  (``late`` minus ``gui_cpu``, ``stalls``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QTimer

BEAT_MS = 20
STALL_MS = 100      # blocked longer than this is a freeze a person notices
GUI_WORK_MS = 250   # the GUI thread's own work between two beats: a step's first paint with a worker on the other
                    # core measured up to 180 ms CPU on the 2-core test machine (the same paint alone 15-50 ms);
                    # an export or a model run on the GUI thread costs seconds
SCHEDSTAT = Path("/proc/thread-self/schedstat")


def run_queue_ms() -> float:
    """Milliseconds this thread has waited for a CPU since it started (0 where the kernel does not say)."""
    try:
        return int(SCHEDSTAT.read_text().split()[1]) / 1e6
    except (OSError, IndexError, ValueError):
        return 0.0


@dataclass(frozen=True)
class Beat:
    """One beat: its phase, the wall clock's lateness, and the part of it the GUI thread spent queued or running."""

    phase: str
    raw: float
    queued: float
    gui_cpu: float

    @property
    def late(self) -> float:
        return self.raw - self.queued

    @property
    def blocked(self) -> float:
        return self.late - self.gui_cpu


@dataclass
class Heartbeat:
    """Start it, walk the app, read ``stalls(limit_ms)`` (blocked by work off the GUI thread) and
    ``busy(limit_ms)`` (work on it): each (phase, ms) over the limit."""

    phase: str = "start"
    beats: list[Beat] = field(default_factory=list)
    _last: tuple[float, float, float] = (0.0, 0.0, 0.0)
    _timer: QTimer | None = None

    def start(self) -> "Heartbeat":
        self._timer = QTimer()
        self._timer.setInterval(BEAT_MS)
        self._timer.timeout.connect(self._beat)
        self._last = self._clocks()
        self._timer.start()
        return self

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.stop()

    @staticmethod
    def _clocks() -> tuple[float, float, float]:
        return time.perf_counter() * 1000, run_queue_ms(), time.thread_time() * 1000

    def _beat(self) -> None:
        now = self._clocks()
        wall, queued, cpu = (a - b for a, b in zip(now, self._last))
        self.beats.append(Beat(self.phase, wall - BEAT_MS, queued, cpu))
        self._last = now

    def _over(self, value, limit_ms: float, skip: tuple[str, ...]) -> list[tuple[str, float]]:
        return [(b.phase, round(value(b))) for b in self.beats if value(b) > limit_ms and b.phase not in skip]

    def stalls(self, limit_ms: float = STALL_MS, skip: tuple[str, ...] = ()) -> list[tuple[str, float]]:
        return self._over(lambda b: b.blocked, limit_ms, skip)

    def busy(self, limit_ms: float = GUI_WORK_MS, skip: tuple[str, ...] = ()) -> list[tuple[str, float]]:
        return self._over(lambda b: b.gui_cpu, limit_ms, skip)

    def worst(self) -> dict[str, tuple[float, float]]:
        """Per phase, the longest (blocked, GUI CPU) of any beat."""
        out: dict[str, tuple[float, float]] = {}
        for b in self.beats:
            blocked, cpu = out.get(b.phase, (0.0, 0.0))
            out[b.phase] = (max(blocked, round(b.blocked)), max(cpu, round(b.gui_cpu)))
        return out
