"""Where a ``compress`` call spends its time, step by step, in wall and CPU seconds.

Why: the goal is a first call within 15 CPU-minutes, and a total alone does not say which step to make cheaper
(timing probes, reconstruction, the int8 guard, timing the files, judging, distillation). The report records
each step's sum; the command's last line names the costliest.
"""
from __future__ import annotations

import contextlib
import os
import time
from typing import Iterator


def cpu_seconds() -> float:
    """CPU seconds this process has used so far, all its threads (user and system)."""
    t = os.times()
    return t.user + t.system


class StepClock:
    """Sums of wall and CPU seconds per named step; a step may run many times (one per probe, per build)."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        wall, cpu = time.perf_counter(), cpu_seconds()
        try:
            yield
        finally:
            self.wall[name] = self.wall.get(name, 0.0) + time.perf_counter() - wall
            self.cpu[name] = self.cpu.get(name, 0.0) + cpu_seconds() - cpu

    def to_json(self) -> dict[str, dict[str, float]]:
        return {name: {"seconds": round(self.wall[name], 1), "cpu_seconds": round(self.cpu[name], 1)}
                for name in self.wall}

    def line(self) -> str:
        """The steps in CPU-minutes, costliest first: ``reconstruct 6.2, probe 3.1, ...``."""
        ranked = sorted(self.cpu.items(), key=lambda item: -item[1])
        return ", ".join(f"{name} {seconds / 60:.1f}" for name, seconds in ranked)
