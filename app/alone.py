"""A time is measured only while no other job of the app runs.

Why: a Compare started while the app was still re-scoring a newly opened clip reported a ×3.17 speed-up (×2.11
alone), with no warning: the two jobs shared two cores. Every timed run (``app.figures.measure``: Compare, Export's
proofs, Study) first waits until it is the app's only job, saying what it waits for (``WaitingFor``); a job
started while it times is recorded on its figure, and the step showing the figure says so.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from .workers import Job, current_job

POLL_S = 0.05


@dataclass(frozen=True)
class WaitingFor:
    """A job's event: it waits for these jobs to end before it times (empty: it waits no more)."""

    jobs: tuple[str, ...]

    def text(self) -> str:
        names = ", ".join(f"“{j}”" for j in self.jobs)
        return f"waiting for {names} to end: times are measured with no other job running"


@contextmanager
def measured_alone() -> Iterator[set[str]]:
    """Wait (in a job's thread) until no other job runs, then time; yields the set that collects the names of
    jobs started meanwhile. Outside a job (a script, a test calling ``measure``) nothing is waited for."""
    job = current_job()
    if job is None or job.runner is None:
        yield set()
        return
    if job.timing == "timing":        # inside an outer timed span (a Study whose figures measure more)
        yield job.contended
        return
    said: tuple[str, ...] = ()
    job.timing = "waiting"
    try:
        while others := job.runner.others_than(job):
            if others != said:
                job.emit_event(WaitingFor(others))
                said = others
            job.control.checkpoint()
            time.sleep(POLL_S)
        if said:
            job.emit_event(WaitingFor(()))
        job.contended = set()
        job.timing = "timing"
        job.contended.update(job.runner.others_than(job))     # one that started as the wait ended
        yield job.contended
    finally:
        job.timing = ""


def throughput_shared(job: Job) -> tuple[str, ...]:
    """For a job that reports its speed as it goes (training, which never waits to run alone; GUI thread): the
    app's other jobs that used the machine since its last report, started meanwhile or running now (one that only
    waits to time is idle); the count starts afresh. The job's ``timing`` is "timing" for its whole run, so the
    runner names the jobs started meanwhile."""
    if job.runner is None:
        return ()
    names = (job.contended - set(job.runner.running_besides(job, waiting=True))) | set(job.runner.running_besides(job))
    job.contended.clear()
    return tuple(sorted(names))


def show_waiting(bar, event: WaitingFor) -> None:
    """``event`` on a step's progress bar (a QProgressBar, often narrow: the names are in its tooltip); the job's
    next progress puts its own format back."""
    bar.setFormat("waiting …" if event.jobs else "%p%")
    bar.setToolTip(event.text() if event.jobs else "")
