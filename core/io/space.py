"""Room on the disk for an output, checked before the work that makes it.

Why: a full disk is found by the write at the end, so ``prune`` onto a full disk ran the whole reconstruction
(minutes) only to refuse. The size of a model file is known once its network is cut: checking the free space then
refuses in one line, naming the disk, before any of the work.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from torch import nn

from .disk import OutputError, disk_of

FILE_SLACK = 1 << 20        # the pickle, the JSON spec and meta (a plan with its scores) beside the tensors


def model_file_bytes(model: nn.Module) -> int:
    """About how many bytes ``save_model`` writes for ``model``: its tensors, plus ``FILE_SLACK``."""
    return sum(t.numel() * t.element_size() for t in model.state_dict().values()) + FILE_SLACK


def check_room(path: str | Path, needed: int) -> None:
    """One ``OutputError`` line naming the disk unless the file system that will hold ``path`` has ``needed``
    bytes free (the staged file is written there in full before it replaces anything)."""
    disk = disk_of(Path(path))
    try:
        free = shutil.disk_usage(disk).free
    except OSError:
        return          # unknown: the write itself still refuses a full disk in one line
    if free < needed:
        raise OutputError(f"cannot write {path}: it needs about {needed / 2**20:,.1f} MiB and the file system at "
                          f"{disk} has {free / 2**20:,.1f} MiB free; nothing was done")
