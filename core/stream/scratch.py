"""Scratch space of one streaming run: fixed-size records by index, in RAM or in one file on disk.

Why a raw file of fixed-size records (not ``np.memmap``, not one file per frame): mapped pages count in the
process's resident set, which is what the engine keeps flat; ``pwrite``/``preadinto`` go through the page cache,
which the kernel reclaims on its own. One file per kind keeps directory operations out of the loop.

The folder is hidden, created by ``tempfile.mkdtemp`` and removed on every exit (exceptions, Ctrl-C). A SIGKILL
cannot be caught: the leftover is named like the output's own staged temp (``.<output>.partial-...``) when the
caller places it beside the output, so the next writer of that output sweeps it (``core.io.output``).
"""
from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Iterator

import numpy as np

from core.errors import UserError

__all__ = ["Slots", "MemorySlots", "FileSlots", "ScratchDir", "scratch_dir"]


class Slots(ABC):
    """``count`` records (``None``: as many as written), each an array of one ``shape``/``dtype``, by index."""

    def __init__(self, count: int | None, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.count, self.shape, self.dtype = count, tuple(shape), np.dtype(dtype)
        self.record_bytes = int(np.prod(self.shape)) * self.dtype.itemsize

    def _check(self, i: int, arr: np.ndarray | None = None) -> None:
        if i < 0 or (self.count is not None and i >= self.count):
            raise IndexError(f"slot {i} outside 0..{self.count - 1 if self.count is not None else '...'}")
        if arr is not None and (arr.shape != self.shape or arr.dtype != self.dtype):
            raise ValueError(f"slot holds {self.dtype} {self.shape}, got {arr.dtype} {arr.shape}")

    @abstractmethod
    def put(self, i: int, arr: np.ndarray) -> None:
        """Store a copy of ``arr`` as record ``i``."""

    @abstractmethod
    def get(self, i: int) -> np.ndarray:
        """Record ``i`` (read-only for the caller)."""

    def pop(self, i: int) -> np.ndarray:
        """Record ``i`` when it will not be read again (a store may forget it)."""
        return self.get(i)

    @property
    @abstractmethod
    def bytes_used(self) -> int:
        """Bytes on disk."""


class MemorySlots(Slots):
    """Records kept in RAM (small clips: no disk traffic at all)."""

    def __init__(self, count: int | None, shape: tuple[int, ...], dtype: np.dtype) -> None:
        super().__init__(count, shape, dtype)
        self._items: dict[int, np.ndarray] = {}

    def put(self, i: int, arr: np.ndarray) -> None:
        self._check(i, arr)
        self._items[i] = np.array(arr, copy=True)

    def get(self, i: int) -> np.ndarray:
        self._check(i)
        if i not in self._items:
            raise KeyError(f"slot {i} was never written")
        return self._items[i]

    def pop(self, i: int) -> np.ndarray:
        self._check(i)
        if i not in self._items:
            raise KeyError(f"slot {i} was never written")
        return self._items.pop(i)

    @property
    def bytes_used(self) -> int:
        return 0


class FileSlots(Slots):
    """Records in one file: record ``i`` at byte ``i * record_bytes``."""

    def __init__(self, path: Path, count: int | None, shape: tuple[int, ...], dtype: np.dtype) -> None:
        super().__init__(count, shape, dtype)
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        self._written = 0

    def put(self, i: int, arr: np.ndarray) -> None:
        self._check(i, arr)
        data = memoryview(np.ascontiguousarray(arr)).cast("B")
        offset, done = i * self.record_bytes, 0
        try:
            while done < len(data):
                done += os.pwrite(self._fd, data[done:], offset + done)
        except OSError as e:
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise UserError(f"the disk holding the scratch data ({self.path.parent.parent}) is full: free "
                                f"space or choose another place with --scratch DIR") from None
            raise
        self._written = max(self._written, (i + 1) * self.record_bytes)

    def get(self, i: int) -> np.ndarray:
        self._check(i)
        out = np.empty(self.shape, self.dtype)
        view = memoryview(out).cast("B")
        offset, done = i * self.record_bytes, 0
        while done < len(view):
            n = os.preadv(self._fd, [view[done:]], offset + done)
            if n == 0:
                raise KeyError(f"slot {i} was never written")
            done += n
        return out

    @property
    def bytes_used(self) -> int:
        return self._written

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class ScratchDir:
    """A hidden temporary folder holding ``FileSlots``; reports the disk it used at its peak."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._slots: list[Slots] = []
        self.peak_bytes = 0

    def slots(self, name: str, count: int | None, shape: tuple[int, ...], dtype, in_memory: bool = False) -> Slots:
        if in_memory:
            return MemorySlots(count, shape, dtype)
        store = FileSlots(self.path / f"{name}.bin", count, shape, dtype)
        self._slots.append(store)
        return store

    def check_space(self, need: int) -> None:
        """Refuse, before the work, a run whose scratch data would not fit on its disk."""
        free = shutil.disk_usage(self.path).free
        if need > free:
            raise UserError(f"not enough disk space for the scratch data of this clip: needs {need / 2**30:.2f} GiB "
                            f"in {self.path.parent}, {free / 2**30:.2f} GiB free (choose another place with "
                            f"--scratch DIR)")

    @property
    def bytes_used(self) -> int:
        used = sum(s.bytes_used for s in self._slots)
        self.peak_bytes = max(self.peak_bytes, used)
        return used

    def close(self) -> None:
        self.bytes_used  # noqa: B018 - records the peak before the files go
        for s in self._slots:
            if isinstance(s, FileSlots):
                s.close()
        shutil.rmtree(self.path, ignore_errors=True)


@contextlib.contextmanager
def scratch_dir(where: str | os.PathLike | None = None, prefix: str = ".ssl-vsr-scratch-") -> Iterator[ScratchDir]:
    """A hidden scratch folder in ``where`` (default: the system temp folder), removed on any exit."""
    parent = Path(where) if where is not None else Path(tempfile.gettempdir())
    if not parent.is_dir():
        raise UserError(f"scratch folder {parent} does not exist or is not a folder")
    try:
        path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    except OSError as e:
        raise UserError(f"cannot create scratch data in {parent}: {e.strerror or e}") from None
    scratch = ScratchDir(path)
    try:
        yield scratch
    finally:
        scratch.close()
