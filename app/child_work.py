"""A job's GIL-bound calls run in a child process, so the window never freezes behind them.

Why: torch's ONNX exporter (and the int8 quantizer's graph passes) hold the GIL for up to a second at a time —
0.6 s on a 16-channel toy, 0.5–1.4 s seen on BasicVSR — and a lower thread priority cannot help a thread that
waits for the GIL, so the window stalled 12 times during one export. A spawned child has its own interpreter.
Cancel kills the child at once instead of waiting for a trace to end. What a killed child leaves is its own
temporary folder (``tempfile`` points there in the child), removed with it; its half-written outputs are the
caller's to sweep (``app.compress_job``). A call made with ``call_with_events`` gets a ``sink`` whose events
cross back as they happen and reach the job's ``emit_event``.

Everything crosses as pickled copies, never through ``Connection.send``: that pickler is torch's, which moves a
tensor it sends into shared memory *in place* — the caller's model had its weights' memory swapped under the
window's thread while that thread read them, and the app crashed (a segmentation fault in CI).
"""
from __future__ import annotations

import io
import multiprocessing
import os
import pickle
import shutil
import tempfile
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, Callable, NoReturn

from .workers import JOB_NICENESS, Job

POLL_S = 0.1        # how often the waiting job thread looks at its Cancel/Pause
# Picklable functions every new child runs first (by reference): a test's stand-ins for slow measurements, which a
# monkeypatch in the parent cannot reach across the process boundary.
CHILD_SETUP: tuple[Callable[[], None], ...] = ()


class ChildDied(RuntimeError):
    """The child process ended without an answer (killed, crashed, out of memory)."""


def _start_child(threads: int, scratch: str, setup: tuple[Callable[[], None], ...]) -> None:
    """Child initializer: the GUI keeps the CPU first; as many torch threads as the parent's jobs use; every
    temporary file inside ``scratch`` (removed by the parent, whatever the child's end)."""
    import torch

    try:
        os.nice(JOB_NICENESS)
    except OSError:
        pass
    torch.set_num_threads(threads)
    os.environ["TMPDIR"] = tempfile.tempdir = scratch
    for fn in setup:
        fn()


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


def _tensor(array: Any) -> Any:
    import torch

    return torch.from_numpy(array if array.flags.writeable else array.copy())


class _CopyingPickler(pickle.Pickler):
    """Copies every tensor's bytes and shares nothing. A CPU tensor crosses as its numpy array: torch's own
    reduction runs the whole ``torch.save``/``torch.load`` machinery per tensor, ~0.2 ms each with the GIL held —
    a network's few hundred tensors and their scores kept the window waiting for 100–400 ms."""

    def reducer_override(self, obj: Any) -> Any:
        import torch

        if type(obj) is not torch.Tensor or obj.requires_grad or obj.device.type != "cpu":
            return NotImplemented        # a Parameter reduces to its data, which comes back here
        try:
            return _tensor, (obj.numpy(),)
        except (TypeError, RuntimeError):        # a dtype or layout numpy has no array for
            return NotImplemented


def _send(conn: Connection, obj: Any) -> None:
    """``obj`` across ``conn`` as a copy (``_CopyingPickler``)."""
    buffer = io.BytesIO()
    _CopyingPickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    conn.send_bytes(buffer.getbuffer())


def _receive(conn: Connection) -> Any:
    return pickle.loads(conn.recv_bytes())


def _serve(conn: Connection, threads: int, scratch: str, setup: tuple[Callable[[], None], ...]) -> None:
    """The child: run each call that arrives, send back ("done", (ok, value)), until the parent closes its end; a
    call that wants events gets a ``sink`` that sends ("event", event) meanwhile."""
    _start_child(threads, scratch, setup)
    while True:
        try:
            fn, args, kwargs, events = _receive(conn)
        except EOFError:
            return
        if events:
            kwargs = {**kwargs, "sink": lambda event: _send(conn, ("event", event))}
        _send(conn, ("done", _run(fn, args, kwargs)))


class ChildWork:
    """One child process for the duration of a ``with`` block inside a job; ``call`` runs ``fn`` there."""

    def __init__(self, job: Job) -> None:
        self._job = job
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None
        self._scratch: str | None = None

    def __enter__(self) -> "ChildWork":
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._conn.close()
            self._process.kill()
            self._process.join()
            self._process = self._conn = None
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        return self._process.pid if self._process is not None else None

    def _start(self) -> None:
        import torch

        ctx = multiprocessing.get_context("spawn")
        self._scratch = tempfile.mkdtemp(prefix="ssl-vsr-child-")
        self._conn, theirs = ctx.Pipe()
        self._process = ctx.Process(target=_serve, args=(theirs, torch.get_num_threads(), self._scratch,
                                                         CHILD_SETUP), daemon=True, name="ssl-vsr child work")
        self._process.start()
        theirs.close()

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` in the child (arguments and result are pickled); its exception is raised here.
        Cancel (``Cancelled`` from the job's control) kills the child first; a child that dies is said in one
        line, never waited for."""
        return self._call(fn, args, kwargs, events=False)

    def call_with_events(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``call``, with ``sink=`` given to ``fn``: each event it emits reaches the job's ``emit_event`` here."""
        return self._call(fn, args, kwargs, events=True)

    def _call(self, fn: Callable[..., Any], args: tuple, kwargs: dict, events: bool) -> Any:
        if self._process is None:
            self._start()
        _send(self._conn, (fn, args, kwargs, events))
        while True:
            while not self._conn.poll(POLL_S):
                if not self._process.is_alive():
                    self._died()
                try:
                    self._job.control.checkpoint()
                except BaseException:
                    self.__exit__()
                    raise
            try:
                kind, value = _receive(self._conn)
            except EOFError:             # it died as the answer was due
                self._died()
            if kind == "event":
                self._job.emit_event(value)
                continue
            ok, value = value
            if not ok:
                raise value
            return value

    def _died(self) -> NoReturn:
        self._process.join()
        code = self._process.exitcode
        self.__exit__()
        raise ChildDied(f"the helper process ended without an answer (exit code {code})")
