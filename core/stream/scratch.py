"""Scratch space of one streaming run: fixed-size records by index, in RAM or in one file on disk.

Why a raw file of fixed-size records (not ``np.memmap``, not one file per frame): mapped pages count in the
process's resident set, which is what the engine keeps flat; ``pwrite``/``preadinto`` go through the page cache,
which the kernel reclaims on its own. One file per kind keeps directory operations out of the loop.

The folder is hidden, created by ``tempfile.mkdtemp`` and removed on every exit (exceptions, Ctrl-C). A SIGKILL
cannot be caught, so each folder holds an ``flock`` on its own ``.owner`` file for as long as the run lives: the
next run that opens scratch in the same place removes every folder of ours whose lock is free (its process is gone).
Beside an output the folder is also named like the output's staged temp, so the next writer of that output sweeps
it too (``core.io.output``).

The default place is the system temp folder, unless that is a RAM disk (tmpfs, as on Debian 13 and Fedora): there,
scratch data would fill the very memory streaming is meant to spare, so it goes to the user's cache folder instead.
"""
from __future__ import annotations

import contextlib
import errno
import glob
import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Iterator

import numpy as np

from core.errors import UserError
from core.io.missing import why_missing
from core.io.partials import SCRATCH_OWNER, SCRATCH_OWNER_TEXT, is_scratch_owner

try:                                    # POSIX; without it (Windows) a killed run's scratch is not swept
    import fcntl
except ImportError:                     # pragma: no cover
    fcntl = None

__all__ = ["Slots", "MemorySlots", "FileSlots", "ScratchDir", "scratch_dir", "default_scratch_parent"]

_RAM_FILESYSTEMS = {"tmpfs", "ramfs"}


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


def _filesystem_type(path: Path) -> str | None:
    """The type (``ext4``, ``tmpfs``, ...) of the filesystem holding ``path``, from the longest matching mount."""
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return None
    target, best, kind = str(path.resolve()), -1, None
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        if (target == point or target.startswith(point.rstrip("/") + "/")) and len(point) > best:
            best, kind = len(point), fields[2]
    return kind


def default_scratch_parent() -> Path:
    """Where scratch goes when the caller names no place: the temp folder, or the user's cache if temp is RAM."""
    temp = Path(tempfile.gettempdir())
    if _filesystem_type(temp) not in _RAM_FILESYSTEMS:
        return temp
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ssl-vsr" / "scratch"
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError:
        return temp
    return cache


def _hold_owner_lock(path: Path) -> int | None:
    """Lock ``path/.owner`` for this process's lifetime (the kernel drops it when the process dies)."""
    if fcntl is None:
        return None
    fd = os.open(path / SCRATCH_OWNER, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)   # scratch: our new folder
    os.write(fd, SCRATCH_OWNER_TEXT)             # how a sweep tells it from a user's file of that name
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def _sweep_orphans(parent: Path, prefix: str) -> None:
    """Remove our scratch folders in ``parent`` whose owner lock is free: their run was killed."""
    if fcntl is None:
        return
    for old in parent.glob(f"{glob.escape(prefix)}*"):
        owner = old / SCRATCH_OWNER
        if not old.is_dir() or old.is_symlink() or not is_scratch_owner(owner):
            continue
        try:
            fd = os.open(owner, os.O_RDWR)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            continue                    # a live run holds it
        finally:
            os.close(fd)
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def scratch_dir(where: str | os.PathLike | None = None, prefix: str = ".ssl-vsr-scratch-") -> Iterator[ScratchDir]:
    """A hidden scratch folder in ``where`` (default: ``default_scratch_parent()``), removed on any exit."""
    parent = Path(where) if where is not None else default_scratch_parent()
    if not parent.is_dir():
        raise UserError(f"scratch folder {parent}: {why_missing(parent, 'folder') or 'not a folder'}")
    _sweep_orphans(parent, prefix)
    try:
        path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    except OSError as e:
        raise UserError(f"cannot create scratch data in {parent}: {e.strerror or e}") from None
    try:
        lock = _hold_owner_lock(path)
    except OSError as e:
        shutil.rmtree(path, ignore_errors=True)
        raise UserError(f"cannot lock scratch data in {parent}: {e.strerror or e}") from None
    scratch = ScratchDir(path)
    try:
        yield scratch
    finally:
        scratch.close()
        if lock is not None:
            os.close(lock)
