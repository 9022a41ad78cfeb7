"""How a step shows its job's events: log lines in the status bar, reconstruction progress and waiting on its
progress bar (one way for every step that runs a job)."""
from __future__ import annotations

from typing import Callable

from core.events import Log

from .alone import WaitingFor, show_waiting
from .recovery_job import is_reconstruct_progress, show_reconstruct_progress


def show_job_event(bar, say: Callable[[str], None], event: object) -> None:
    """``event`` on the step's progress ``bar`` (a QProgressBar) or through ``say`` (the status bar)."""
    if isinstance(event, Log):
        say(event.message)
    elif is_reconstruct_progress(event):
        show_reconstruct_progress(bar, event)
    elif isinstance(event, WaitingFor):
        show_waiting(bar, event)
        if event.jobs:
            say(event.text())
