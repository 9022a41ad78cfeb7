"""The work behind the Export step's compress box: ``core.compress`` on the loaded network and the current clip, in a
child process of its own.

Why a child: ``compress`` traces and quantizes ONNX graphs, which hold the GIL for up to a second at a time
(``app.child_work``); in the job's thread they froze the window. Its progress and log events cross back as they
happen. Cancel kills the child at once; what it was writing is then swept here (``sweep_outputs``), so a
cancelled compress leaves nothing behind: no partial, no lock file, no output of the set (the file without its
report), no folder its lock created. The recipe times networks, so it starts only when no other job of the app
runs (``app.alone``) and says which jobs started while it ran.
"""
from __future__ import annotations

import contextlib
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.compress.footage import DEFAULT_CALIB_FRAMES, DEFAULT_JUDGED_FRAMES, Footage, split_frames
from core.compress.run import CompressRequest, CompressResult, compress
from core.events import Cancelled
from core.memory import check_network_memory
from core.io.locks import hold_output
from core.io.partials import our_partials, remove

from .alone import measured_alone
from .child_work import ChildDied, ChildWork
from .clips import ClipPair
from .workers import Job

FOOTAGE_FRAMES = DEFAULT_CALIB_FRAMES + DEFAULT_JUDGED_FRAMES


@dataclass(frozen=True)
class CompressOutcome:
    result: CompressResult
    contended: tuple[str, ...] = ()          # other jobs of the app that ran while it measured (``app.alone``)


def check_footage(clip: ClipPair, num_feat: int) -> None:
    """The one-line refusals the CLI gives a clip too short or too small (``split_frames``) or too large for this
    machine's memory at ``num_feat`` channels (``check_network_memory``), from its shape alone (the GUI thread
    reads no frame): a ``UserError``."""
    h, w = clip.lr_size
    split_frames(clip.name, np.zeros((min(len(clip), FOOTAGE_FRAMES), h, w, 3), dtype=np.uint8))
    check_network_memory((h, w), num_feat, f"clip {clip.name}")


def read_footage(clip: ClipPair) -> Footage:
    """The clip's first frames, split as the CLI splits its first footage clip (worker thread)."""
    lr = clip.lr
    frames = np.stack([lr[i] for i in range(min(len(lr), FOOTAGE_FRAMES))])
    return split_frames(clip.name, frames)


def _missing_folders(folder: Path) -> list[Path]:
    """``folder`` and its parents that do not exist yet, deepest first."""
    return [p for p in [folder, *folder.parents] if not os.path.lexists(p)]


def _regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def sweep_outputs(req: CompressRequest, started: float, created: list[Path]) -> None:
    """After a killed child: its partials of every output (marked ours, their writer dead), its lock files, every
    output it finished (a complete set or none: ``req`` never overwrites, so a file there made since ``started``
    under our lock is this run's), and the empty folders its locks created (``created``, deepest first)."""
    for target in req.outputs().values():
        for partial in our_partials(target):
            remove(partial)
        try:
            with hold_output(target):                     # releasing it removes the lock file the child left
                if _regular(target) and os.lstat(target).st_mtime >= started - 1.0:
                    target.unlink()
        except Exception:  # noqa: BLE001 - a live writer of that name: what is there is not ours
            pass
    for folder in created:
        with contextlib.suppress(OSError):
            os.rmdir(folder)                              # empty only: rmdir removes nothing else


def run_compress(job: Job, req: CompressRequest, clip: ClipPair) -> CompressOutcome:
    """``compress(req)`` on ``clip``'s first frames in a child process; Cancel kills it and sweeps its outputs."""
    footage = read_footage(clip)
    with measured_alone() as contended:
        created = _missing_folders(Path(req.out).parent)
        started = time.time()
        try:
            with ChildWork(job) as child:
                result = child.call_with_events(compress, req, footage=footage)
        except Cancelled:
            sweep_outputs(req, started, created)
            raise
        except ChildDied:                 # what it was writing goes with it
            sweep_outputs(req, started, created)
            raise
        return CompressOutcome(result, tuple(sorted(contended)))
