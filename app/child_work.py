"""A job's GIL-bound calls run in a child process, so the window never freezes behind them.

Why: torch's ONNX exporter (and the int8 quantizer's graph passes) hold the GIL for up to a second at a time —
0.6 s on a 16-channel toy, 0.5–1.4 s seen on BasicVSR — and a lower thread priority cannot help a thread that
waits for the GIL, so the window stalled 12 times during one export. A spawned child has its own interpreter.
Cancel kills the child at once instead of waiting for a trace to end.
"""
from __future__ import annotations

import multiprocessing
import os
import pickle
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, Callable, NoReturn

from .workers import JOB_NICENESS, Job

POLL_S = 0.1        # how often the waiting job thread looks at its Cancel/Pause


def _start_child(threads: int) -> None:
    """Child initializer: the GUI keeps the CPU first; as many torch threads as the parent's jobs use."""
    import torch

    try:
        os.nice(JOB_NICENESS)
    except OSError:
        pass
    torch.set_num_threads(threads)


def _portable(exc: BaseException) -> BaseException:
    """``exc`` as it can cross back to the parent (an exception that cannot be rebuilt there keeps its words)."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:  # noqa: BLE001 - any exception that does not round-trip
        return RuntimeError(f"{type(exc).__name__}: {exc}")


def _run(fn: Callable[..., Any], args: tuple, kwargs: dict) -> tuple[bool, Any]:
    try:
        return True, fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - raised again in the parent
        return False, _portable(exc)


def _serve(conn: Connection, threads: int) -> None:
    """The child: run each call that arrives, send back (ok, value), until the parent closes its end."""
    _start_child(threads)
    while True:
        try:
            fn, args, kwargs = conn.recv()
        except EOFError:
            return
        conn.send(_run(fn, args, kwargs))


class ChildWork:
    """One child process for the duration of a ``with`` block inside a job; ``call`` runs ``fn`` there."""

    def __init__(self, job: Job) -> None:
        self._job = job
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None

    def __enter__(self) -> "ChildWork":
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._conn.close()
            self._process.kill()
            self._process.join()
            self._process = self._conn = None

    def _start(self) -> None:
        import torch

        ctx = multiprocessing.get_context("spawn")
        self._conn, theirs = ctx.Pipe()
        self._process = ctx.Process(target=_serve, args=(theirs, torch.get_num_threads()), daemon=True,
                                    name="ssl-vsr child work")
        self._process.start()
        theirs.close()

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` in the child (arguments and result are pickled); its exception is raised here.
        Cancel (``Cancelled`` from the job's control) kills the child first; a child that dies is said in one
        line, never waited for."""
        if self._process is None:
            self._start()
        self._conn.send((fn, args, kwargs))
        while not self._conn.poll(POLL_S):
            if not self._process.is_alive():
                self._died()
            try:
                self._job.control.checkpoint()
            except BaseException:
                self.__exit__()
                raise
        try:
            ok, value = self._conn.recv()
        except EOFError:             # it died as the answer was due
            self._died()
        if not ok:
            raise value
        return value

    def _died(self) -> NoReturn:
        self._process.join()
        code = self._process.exitcode
        self.__exit__()
        raise RuntimeError(f"the helper process ended without an answer (exit code {code})")
