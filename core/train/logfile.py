"""Events as text: one line per event for the run's log file (and the CLI), or one JSON object per event."""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from ..events import (CheckpointSaved, Event, EventSink, Log, Progress, SparsityUpdate, StageFinished, StageStarted,
                      Validation)
from ..io.disk import disk_errors
from ..io.output import append_text


def format_event(e: Event) -> str:
    """A short human-readable line for ``e``."""
    if isinstance(e, StageStarted):
        return f"[{e.stage}] started: {e.total} iterations" + (f", resuming at {e.start}" if e.start else "")
    if isinstance(e, Progress):
        losses = " ".join(f"{k}={v:.4g}" for k, v in e.losses.items())
        extra = [f"lr={e.lr:.3g}" if e.lr is not None else "",
                 f"{e.seconds_per_iter:.3f}s/it" if e.seconds_per_iter else "",
                 f"{e.throughput:.1f} frames/s" if e.throughput else "",
                 f"eta {e.eta_seconds / 60:.1f} min" if e.eta_seconds else ""]
        return f"[{e.stage}] {e.iteration}/{e.total} {losses} {' '.join(x for x in extra if x)}".rstrip()
    if isinstance(e, SparsityUpdate):
        return (f"[{e.stage}] {e.iteration}: lambda={e.mean_lambda:.4g} |gamma| pruned={e.gamma_pruned:.4g} "
                f"kept={e.gamma_kept:.4g} ({e.phase})")
    if isinstance(e, Validation):
        return f"[{e.stage}] {e.iteration}: validation PSNR {e.psnr:.3f} dB"
    if isinstance(e, CheckpointSaved):
        return f"[{e.stage}] {e.iteration}: state saved to {e.path}"
    if isinstance(e, StageFinished):
        return f"[{e.stage}] finished: " + ", ".join(f"{k}={v}" for k, v in e.outputs.items())
    if isinstance(e, Log):
        return e.message if e.level == "info" else f"{e.level.upper()}: {e.message}"
    return repr(e)


def event_to_json(e: Event) -> str:
    return json.dumps({"event": type(e).__name__, **dataclasses.asdict(e)})


class LogFile:
    """A sink that appends each event as a time-stamped line (progress throttled by the engine), once
    ``release()`` was called; until then the lines wait in memory: a new run reads its data before it marks its
    folder, and a refusal there must leave no log behind."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._held: list[str] | None = []

    def __call__(self, e: Event) -> None:
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {format_event(e)}\n"
        if self._held is None:
            self._append(line)
        else:
            self._held.append(line)

    def release(self) -> None:
        """Write the lines held so far; every later one is written as it comes."""
        held, self._held = self._held, None
        if held:
            self._append("".join(held))

    def _append(self, text: str) -> None:
        """A full or failing disk stops the run in one line naming the disk (it used to end in a traceback)."""
        with disk_errors(self.path):
            append_text(self.path, text)


def tee(*sinks: EventSink) -> EventSink:
    def emit(e: Event) -> None:
        for s in sinks:
            s(e)
    return emit
