"""A run folder's marker, ``.ssl-vsr-run``: that the folder is a training run's, which of the run's own names the
run wrote there, and whether the run finished.

Why a ledger: a user's file may carry a name the run writes (``pruned.pth``, ``report.h5``, even the marker's),
and a resume must never take it for the run's own (replace it, or read it as the run's result). The marker is
recognised by its content, and a name counts as the run's only once the marker records it; the run records a name
before it writes the file, so a run killed between the two still owns what it wrote.

    ssl-vsr training run
    wrote train.log
    wrote dense.pth
    finished

Runs from before the ledger wrote the header alone (and ``finished`` when they ended): ``Marker.legacy``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from ..io.output import write_text

RUN_MARKER = ".ssl-vsr-run"
_HEADER = "ssl-vsr training run"
_WROTE = "wrote "
_FINISHED = "finished"
_MAX_BYTES = 64 * 1024          # a ledger of a few dozen names: anything larger is not ours


@dataclass(frozen=True)
class Marker:
    """What the marker says: the run's names it wrote (relative to the folder) and whether it finished."""

    written: frozenset[str] = frozenset()
    finished: bool = False

    @property
    def legacy(self) -> bool:
        """A marker of a run from before the ledger (its header, perhaps ``finished``, and no name): every run
        since records ``train.log`` when it starts, so which of its folder's files that run wrote is unknown."""
        return not self.written


def read_marker(run_dir: Path) -> Marker | None:
    """The folder's marker, None where there is none; a file of that name that is not ours is refused (and kept)."""
    path = run_dir / RUN_MARKER
    if not os.path.lexists(path):
        return None
    try:                            # never through a link, never blocking on a FIFO, never a large file
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
        try:
            data = os.read(fd, _MAX_BYTES + 1)
        finally:
            os.close(fd)
        marker = _parse(data)
    except (OSError, ValueError):
        marker = None
    if marker is None:
        raise UserError(f"{path} is not a training run's marker (a file of the user's?): refusing to use or replace "
                        f"it; move it away, or choose another run folder")
    return marker


def _parse(data: bytes) -> Marker | None:
    if len(data) > _MAX_BYTES:
        return None
    lines = data.decode("utf-8").split("\n")
    if lines[0] != _HEADER or lines[-1] != "":
        return None
    written, finished = set(), False
    for line in lines[1:-1]:
        if line == _FINISHED:
            finished = True
        elif line.startswith(_WROTE) and line[len(_WROTE):]:
            written.add(line[len(_WROTE):])
        else:
            return None
    return Marker(frozenset(written), finished)


def write_marker(run_dir: Path, marker: Marker) -> None:
    """Write the marker (atomically: a killed run leaves the old or the new one, never half of it)."""
    lines = [_HEADER, *(f"{_WROTE}{name}" for name in sorted(marker.written))]
    lines += [_FINISHED] if marker.finished else []
    write_text(run_dir / RUN_MARKER, "\n".join(lines) + "\n", overwrite=True)


def record_output(run_dir: Path, name: str) -> None:
    """Record ``name`` (relative to the folder) as the run's own, before the run first writes it (a stage run
    outside a run folder, with no marker, has nothing to record)."""
    marker = read_marker(run_dir)
    if marker is not None and name not in marker.written:
        write_marker(run_dir, Marker(marker.written | {name}, marker.finished))


def unrecorded(run_dir: Path, marker: Marker, names: list[str]) -> str | None:
    """The first of ``names`` present in the folder that the marker does not record as the run's, else None."""
    for name in names:
        if name not in marker.written and os.path.lexists(run_dir / name):
            return name
    return None
