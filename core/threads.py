"""CPU threads and the OpenMP wait policy: steady speed when other programs share the cores.

Why: PyTorch's CPU kernels run on OpenMP (libgomp in the Linux wheels). By default a libgomp thread that reaches
the end of a parallel region spins for a while before it sleeps. On an idle machine that saves a wake-up; on a
busy one the spinning threads take the CPU from the thread that still has work, and every region waits for its
slowest thread. Measured on a shared 2-core machine, the same ``sr`` job took 0.13-4.0 s/frame with 2 spinning
threads and a steady 0.23 with one (bench/bench_threads.py prints the comparison).

So, once at start-up and before torch is imported (libgomp reads its environment when it is loaded):
``OMP_WAIT_POLICY=PASSIVE`` (waiting threads sleep at once), unless the user set an OpenMP wait policy or spin
count themself. The thread count defaults to the cores this process may run on; ``--threads N`` on the compute
commands (and the app's Settings menu) sets it explicitly, e.g. 1 on a machine that is always busy.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Mapping, MutableMapping

# Variables by which a user chooses libgomp's waiting themself: any of them set means "leave it alone".
USER_WAIT_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
STARTUP_ENVIRONMENT = {"OMP_WAIT_POLICY": "PASSIVE"}
MAX_THREADS = 1024


def startup_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables to add to ``environ`` at start-up (none when the user already chose a wait policy)."""
    if any(environ.get(name, "").strip() for name in USER_WAIT_VARIABLES):
        return {}
    return dict(STARTUP_ENVIRONMENT)


def configure_startup(environ: MutableMapping[str, str] | None = None) -> bool:
    """Set the wait policy for this process; returns whether it can still take effect (torch not yet imported).

    Child processes (DataLoader workers, torchrun ranks) inherit it through the environment.
    """
    env = os.environ if environ is None else environ
    env.update(startup_environment(env))
    return "torch" not in sys.modules


def usable_cores(affinity: set[int] | None = None, cpu_count: int | None = None) -> int:
    """Cores this process may run on: its CPU affinity (taskset, containers' cpusets) or else all of them."""
    if affinity is None and hasattr(os, "sched_getaffinity"):
        affinity = os.sched_getaffinity(0)
    if affinity:
        return len(affinity)
    return max(1, cpu_count if cpu_count is not None else (os.cpu_count() or 1))


def default_threads(cores: int, environ: Mapping[str, str]) -> int:
    """Threads when none was asked for: ``OMP_NUM_THREADS`` if the user set a valid one, else one per core."""
    text = environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if text.isdigit() and int(text) >= 1:
        return min(int(text), MAX_THREADS)
    return max(1, cores)


def resolve_threads(requested: int | None, cores: int, environ: Mapping[str, str]) -> int:
    """The thread count to use: the user's explicit choice, or the default."""
    if requested is None:
        return default_threads(cores, environ)
    if not 1 <= requested <= MAX_THREADS:
        raise ValueError(f"threads must be between 1 and {MAX_THREADS}, got {requested}")
    return requested


def set_threads(requested: int | None = None) -> int:
    """Apply ``requested`` (None: the default) to torch's intra-op pool; returns the count now in effect.

    torch.set_num_threads also sets the count every thread started later picks up on its first parallel op,
    so the app's job threads follow the setting chosen in the GUI thread.
    """
    import torch

    n = resolve_threads(requested, usable_cores(), os.environ)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


def parse_threads(text: str) -> int:
    """argparse type for ``--threads``: a whole number of threads, 1..MAX_THREADS."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of threads, got {text!r}") from None
    if not 1 <= value <= MAX_THREADS:
        raise argparse.ArgumentTypeError(f"must be between 1 and {MAX_THREADS}, got {value}")
    return value


def add_threads_option(parser: argparse.ArgumentParser) -> None:
    """``--threads N`` on a compute command (applied by core.cli.main before the command runs)."""
    parser.add_argument("--threads", type=parse_threads, default=None, metavar="N",
                        help="CPU threads for the computation (default: one per core, or OMP_NUM_THREADS); "
                             "1 gives the steadiest speed when other programs keep the cores busy")


def compute_threads(device: object) -> int | None:
    """CPU threads torch computes with on ``device`` (None on a GPU): every time a command reports depends on it."""
    import torch

    return None if torch.device(device).type != "cpu" else torch.get_num_threads()
