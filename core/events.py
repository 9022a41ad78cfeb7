"""Typed progress events and a cancel/pause token: the one interface between the engine and its front ends.

The engine calls ``sink(event)`` with small frozen records and ``control.checkpoint()`` once per iteration.
The CLI renders events as a progress bar and a log file; the GUI's worker re-emits them as Qt signals.
Nothing here knows about Qt, and the engine never prints.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable, Union


@dataclass(frozen=True)
class StageStarted:
    stage: str                       # pretrain | sir | finetune | infer | ...
    total: int                       # iterations (or steps) the stage will run
    start: int = 0                   # first iteration (non-zero when resumed)


@dataclass(frozen=True)
class Progress:
    stage: str
    iteration: int
    total: int
    losses: dict[str, float] = field(default_factory=dict)
    lr: float | None = None
    seconds_per_iter: float | None = None
    eta_seconds: float | None = None
    throughput: float | None = None  # frames per second through the network


ETA_AFTER = 0.05        # no ETA before this share of the work: the first items (allocations, kernel choice) run
                        # slow, and an ETA from them read 156 minutes for a stage that took a few


def eta_seconds(elapsed: float, done: int, total: int) -> float | None:
    """Seconds left at the pace so far, or None until ``ETA_AFTER`` of the work is done."""
    if total <= 0 or done < max(1.0, ETA_AFTER * total):
        return None
    return elapsed / done * max(total - done, 0)


def every_step(sink: "EventSink", step: float = 0.05) -> "EventSink":
    """``sink`` with each stage's ``Progress`` thinned to one per ``step`` of its work (and its last): a log gets a
    line per 5 %, not one per layer reconstructed."""
    last: dict[str, int] = {}

    def emit(event: "Event") -> None:
        if isinstance(event, Progress) and event.total > 0:
            bucket = int(event.iteration / event.total / step)
            if event.iteration < event.total and last.get(event.stage) == bucket:
                return
            last[event.stage] = bucket
        sink(event)
    return emit


@dataclass(frozen=True)
class SparsityUpdate:
    stage: str
    iteration: int
    mean_lambda: float
    gamma_pruned: float              # mean |γ| of the units to prune (S)
    gamma_kept: float                # mean |γ| of the kept units
    phase: str = "growing"


@dataclass(frozen=True)
class Validation:
    stage: str
    iteration: int
    psnr: float
    ssim: float | None = None


@dataclass(frozen=True)
class CheckpointSaved:
    stage: str
    iteration: int
    path: str


@dataclass(frozen=True)
class Log:
    message: str
    level: str = "info"              # info | warning | error


@dataclass(frozen=True)
class StageFinished:
    stage: str
    outputs: dict[str, str] = field(default_factory=dict)   # name → file written


Event = Union[StageStarted, Progress, SparsityUpdate, Validation, CheckpointSaved, Log, StageFinished]
EventSink = Callable[[Event], None]


def ignore(_: Event) -> None:
    """A sink that drops everything (for callers that do not watch)."""


class Cancelled(Exception):
    """Raised at a clean point when the run was cancelled; state up to there has been saved."""


class RunControl:
    """Thread-safe cancel and pause flags that the engine polls once per iteration."""

    def __init__(self) -> None:
        self._cancel = threading.Event()
        self._running = threading.Event()
        self._running.set()

    def cancel(self) -> None:
        self._cancel.set()
        self._running.set()          # wake a paused run so it can stop

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def checkpoint(self) -> None:
        """Block while paused; raise ``Cancelled`` if cancelled."""
        self._running.wait()
        if self._cancel.is_set():
            raise Cancelled()
