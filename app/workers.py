"""Run engine calls off the GUI thread and bring their results back as queued Qt signals.

A ``Job`` owns one ``RunControl``: the engine (or an inference progress callback) polls it, so Cancel and Pause
work without killing threads. Widgets are only ever touched by slots that run in the GUI thread.
"""
from __future__ import annotations

import os
import sys
import threading
import time
import traceback
from typing import Any, Callable

from PySide6.QtCore import QObject, QThread, Signal

from core.events import Cancelled, Event, RunControl

# Niceness of job threads (and of the OpenMP threads they start, which inherit it): with every core busy in
# convolutions, the GUI thread at the default niceness still gets the CPU within a few ms when it needs it.
JOB_NICENESS = 10

_here = threading.local()        # .job: the Job whose thread this is


def current_job() -> "Job | None":
    """The job running in this thread (None in the GUI thread or a thread no job started)."""
    return getattr(_here, "job", None)


def _yield_to_the_gui() -> None:
    """Lower this thread's CPU priority: niceness is per thread on Linux; elsewhere Qt's priority applies."""
    if sys.platform.startswith("linux"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(),
                           min(19, os.getpriority(os.PRIO_PROCESS, 0) + JOB_NICENESS))
            return
        except OSError:
            pass
    QThread.currentThread().setPriority(QThread.Priority.LowPriority)


class Job(QThread):
    """One background call ``fn(job)``; ``job.report``/``job.emit_event`` are safe to call from ``fn``."""

    progressed = Signal(int, int)        # done, total
    event = Signal(object)               # a core.events record
    succeeded = Signal(object)           # fn's return value
    failed = Signal(object, str)         # the exception, its formatted traceback
    cancelled = Signal()

    def __init__(self, name: str, fn: Callable[["Job"], Any], parent: QObject | None = None,
                 runner: "JobRunner | None" = None) -> None:
        super().__init__(parent)
        self.setObjectName(name)
        self.name = name
        self.control = RunControl()
        self.runner = runner
        self.timing = ""                   # "waiting" | "timing" while inside ``app.alone.measured_alone``
        self.contended: set[str] = set()   # jobs started while it was timing
        self._fn = fn
        self._last_progress = 0.0

    def run(self) -> None:  # noqa: D401 - QThread entry point
        _here.job = self
        _yield_to_the_gui()
        try:
            result = self._fn(self)
        except Cancelled:
            self.cancelled.emit()
        except BaseException as exc:  # every failure must reach the GUI as a dialog, never kill the app
            self.failed.emit(exc, traceback.format_exc())
        else:
            self.succeeded.emit(result)

    # -- called from the worker thread ----------------------------------------------------------------
    def report(self, done: int, total: int) -> None:
        """Progress callback for the engine: honours pause/cancel, emits at most ~30 signals a second."""
        self.control.checkpoint()
        now = time.monotonic()
        if done >= total or now - self._last_progress > 0.03:
            self._last_progress = now
            self.progressed.emit(done, total)

    def emit_event(self, event: Event) -> None:
        """Event sink for the engine (queued to the GUI thread)."""
        self.event.emit(event)

    # -- called from the GUI thread -------------------------------------------------------------------
    def cancel(self) -> None:
        self.control.cancel()


class JobRunner(QObject):
    """Starts jobs, keeps them alive until they finish, and lets the window wait for all of them on close."""

    busyChanged = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._jobs: list[Job] = []
        self._lock = threading.Lock()      # ``_jobs`` is read by job threads (``others_than``)

    def start(self, name: str, fn: Callable[[Job], Any], *, on_success: Callable[[Any], None] | None = None,
              on_failure: Callable[[BaseException, str], None] | None = None,
              on_progress: Callable[[int, int], None] | None = None,
              on_event: Callable[[Event], None] | None = None,
              on_cancel: Callable[[], None] | None = None,
              on_finish: Callable[[], None] | None = None) -> Job:
        """Create and start a job; the callbacks run in the GUI thread."""
        job = Job(name, fn, self, runner=self)
        for signal, slot in ((job.succeeded, on_success), (job.failed, on_failure), (job.progressed, on_progress),
                             (job.event, on_event), (job.cancelled, on_cancel)):
            if slot is not None:
                signal.connect(slot)
        job.finished.connect(lambda: self._forget(job, on_finish))
        with self._lock:
            for other in self._jobs:
                if other.timing == "timing":
                    other.contended.add(name)
            self._jobs.append(job)
        if len(self._jobs) == 1:
            self.busyChanged.emit(True)
        job.start()
        return job

    def _forget(self, job: Job, on_finish: Callable[[], None] | None) -> None:
        with self._lock:
            if job in self._jobs:
                self._jobs.remove(job)
        if on_finish is not None:
            on_finish()
        job.deleteLater()
        if not self._jobs:
            self.busyChanged.emit(False)

    @property
    def running(self) -> list[Job]:
        return list(self._jobs)

    def others_than(self, job: Job) -> tuple[str, ...]:
        """Names of the live jobs other than ``job`` that it must wait for to time alone (any thread): of two
        jobs waiting to time, the later one waits for the earlier, never the other way round."""
        with self._lock:
            jobs = list(self._jobs)
        later = jobs[jobs.index(job) + 1:] if job in jobs else []
        return tuple(j.name for j in jobs if j is not job and not j.isFinished()
                     and not (j.timing == "waiting" and j in later))

    def running_besides(self, job: Job, waiting: bool = False) -> tuple[str, ...]:
        """Names of the live jobs other than ``job`` that use the machine now (``waiting``: those that wait to
        time, idle meanwhile)."""
        with self._lock:
            jobs = list(self._jobs)
        return tuple(j.name for j in jobs if j is not job and not j.isFinished() and (j.timing == "waiting") == waiting)

    def cancel_all(self) -> None:
        for job in self._jobs:
            job.cancel()

    def wait_all(self, timeout_ms: int = 60_000) -> bool:
        """Block until every job has returned (used on close, after ``cancel_all``)."""
        deadline = time.monotonic() + timeout_ms / 1000
        for job in list(self._jobs):
            left = max(0, int((deadline - time.monotonic()) * 1000))
            if not job.wait(left):
                return False
        return True
