"""Who may write an output or a run folder right now: locks taken when a command starts, held until it ends.

Why a module of its own: a lock is the first thing a command writes and the last it removes, so it is where
links, users' files and deleted lock files are met first.

- A lock is an ``flock`` the kernel drops when its holder ends (``kill -9`` included): a dead holder never
  blocks anyone, a live one always does — a second thread of the same process too.
- An output's lock is the file ``.<name>.lock`` beside it, recognised by its content (``ssl-vsr lock`` and the
  holder's pid), never by its name alone: a user's file of that name is refused and kept, a symbolic link there
  is never opened through. It appears complete (written and locked under another name, then hard-linked).
- Deleting a live lock file cannot let a second writer in unnoticed: the holder checks before it replaces
  anything that the lock file at the name is still its own (``check_held``), and refuses when it is not.
- A run folder is locked as the folder itself (its directory descriptor): there is no file to delete or to plant
  a link at.
"""
from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from .disk import UMASK, OutputError, disk_reason

try:  # POSIX advisory locks; Windows has none, there a second writer is not detected
    import fcntl
except ImportError:  # pragma: no cover - not on the platforms we test
    fcntl = None  # type: ignore[assignment]

__all__ = ["exclusive_lock", "folder_lock", "probe_folder_lock", "hold_output", "writer_lock", "check_held",
           "lock_path"]

Busy = Callable[[int | None], Exception]
LOCK_MAGIC = b"ssl-vsr lock\n"
_MAX_LOCK_BYTES = 64
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


@dataclass
class _Holding:
    """A lock this process holds on an output: its lock file's descriptor, and whether a write is under way."""

    fd: int
    writing: bool = False


_HELD: dict[Path, _Holding] = {}   # every output this process holds
_HELD_GUARD = threading.Lock()


def lock_path(target: Path) -> Path:
    """Where the lock of the output ``target`` lies: ``.<name>.lock`` beside it."""
    return target.parent / f".{target.name}.lock"


# -- an output's lock file ----------------------------------------------------------------------------------
@contextlib.contextmanager
def exclusive_lock(lock: Path, busy: Busy, *, guards: Path | None = None) -> Iterator[int]:
    """Hold an exclusive lock on the file ``lock`` while the block runs (yields its descriptor); raise
    ``busy(pid)`` at once when a live holder has it. A disk that refuses the lock file is one line
    (``OutputError``) naming the disk and what the lock ``guards`` (the lock file itself when not given)."""
    if fcntl is None:  # pragma: no cover
        yield -1
        return
    created: list[Path] = []
    try:
        fd = _take(lock, busy, guards, created)
    except BaseException:
        _remove_empty(created)
        raise
    try:
        yield fd
    finally:
        with contextlib.suppress(OSError):
            if _is_ours_at(lock, fd):
                lock.unlink()
        os.close(fd)
        _remove_empty(created)


def _make_folders(folder: Path, created: list[Path]) -> None:
    """Create ``folder`` and its missing parents, noting each one created (deepest last)."""
    missing = [p for p in [folder, *folder.parents] if not os.path.lexists(p)][::-1]
    for path in missing:
        with contextlib.suppress(FileExistsError):
            os.mkdir(path)
            created.append(path)


def _remove_empty(created: list[Path]) -> None:
    """Remove the folders a lock created when they are still empty: a refused command leaves no folder behind
    (``rmdir`` removes nothing else; an output written into them keeps them)."""
    for path in reversed(created):
        with contextlib.suppress(OSError):
            os.rmdir(path)


def _take(lock: Path, busy: Busy, guards: Path | None, created: list[Path]) -> int:
    try:
        _make_folders(lock.parent, created)
        while True:
            fd = _open_existing(lock) if os.path.lexists(lock) else _create(lock)
            if fd is None:
                continue                     # it appeared or went meanwhile: look again
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pid = _holder_pid(fd)
                os.close(fd)
                raise busy(pid) from None
            if _is_ours_at(lock, fd):        # the holder before us may have removed it after we opened it
                _stamp(fd)
                return fd
            os.close(fd)
    except OSError as e:
        what = f"write {guards}" if guards is not None else f"create the lock file {lock}"
        where = f" (at its lock file {lock.name})" if guards is not None else ""
        raise OutputError(f"cannot {what}: {disk_reason(lock, e)}{where}; nothing was replaced") from None


def _open_existing(lock: Path) -> int | None:
    """The lock file at ``lock`` opened without following a link, when it is one of ours; None when it went."""
    try:
        fd = os.open(lock, os.O_RDWR | os.O_NONBLOCK | _NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as e:
        if e.errno != errno.ELOOP:
            raise
        raise OutputError(f"{lock} is a symbolic link where this tool's lock file goes: refusing to follow it; "
                          f"remove the link, or choose another output") from None
    if not _is_lock_file(fd):
        os.close(fd)
        raise OutputError(f"{lock} is in the way of this tool's lock (it is not one of its lock files): move it, "
                          f"or choose another output")
    return fd


def _create(lock: Path) -> int | None:
    """A new lock file, written and locked under a temporary name, then linked to ``lock`` (so nobody ever
    sees it empty); None when another writer's lock file took the name first."""
    fd, name = tempfile.mkstemp(prefix=f"{lock.name}-", dir=lock.parent)
    try:
        os.fchmod(fd, 0o666 & ~UMASK)
        os.write(fd, LOCK_MAGIC)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        try:
            os.link(name, lock)
        except FileExistsError:
            os.close(fd)
            return None
        except OSError as e:                   # a file system without hard links: create the name itself
            if e.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK):
                raise
            os.close(fd)
            return _create_in_place(lock)
        return fd
    except BaseException:
        with contextlib.suppress(OSError):
            os.close(fd)
        raise
    finally:
        with contextlib.suppress(OSError):
            os.unlink(name)


def _create_in_place(lock: Path) -> int | None:
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_EXCL | _NOFOLLOW | os.O_CLOEXEC, 0o666 & ~UMASK)
    except FileExistsError:
        return None
    os.write(fd, LOCK_MAGIC)
    return fd


def _is_lock_file(fd: int) -> bool:
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_size > _MAX_LOCK_BYTES:
        return False
    return os.pread(fd, _MAX_LOCK_BYTES, 0).startswith(LOCK_MAGIC)


def _is_ours_at(lock: Path, fd: int) -> bool:
    """The name ``lock`` still holds the very file ``fd`` is open on (not removed, not replaced)."""
    try:
        at, ours = os.lstat(lock), os.fstat(fd)
    except OSError:
        return False
    return (at.st_dev, at.st_ino) == (ours.st_dev, ours.st_ino)


def _stamp(fd: int) -> None:
    os.ftruncate(fd, len(LOCK_MAGIC))
    os.pwrite(fd, f"{os.getpid()}\n".encode(), len(LOCK_MAGIC))


def _holder_pid(fd: int) -> int | None:
    """The pid a lock file's holder wrote into it (None while it has not written it yet)."""
    text = os.pread(fd, _MAX_LOCK_BYTES, 0)[len(LOCK_MAGIC):].strip()
    return int(text) if text.isdigit() else None


# -- holding an output for a whole command ----------------------------------------------------------------
def _busy_writer(target: Path) -> Busy:
    def refuse(pid: int | None) -> Exception:
        who = f" (pid {pid})" if pid is not None else ""
        return OutputError(f"another process is writing {target} right now{who}: wait for it or choose another "
                           f"output")
    return refuse


@contextlib.contextmanager
def hold_output(target: Path) -> Iterator[None]:
    """Lock the output ``target`` for the whole command (taken before any work); the writes of this process to
    ``target`` inside the block use this lock, one at a time. A second holder, thread or process, is refused."""
    with exclusive_lock(lock_path(target), _busy_writer(target), guards=target) as fd:
        with _HELD_GUARD:
            _HELD[target] = _Holding(fd)
        try:
            yield
        finally:
            with _HELD_GUARD:
                _HELD.pop(target, None)


@contextlib.contextmanager
def writer_lock(target: Path) -> Iterator[None]:
    """The lock of one write of ``target``: the command's own when it holds one (``hold_output``), else taken
    for the write. A second write of the same target while one is under way is refused like another process."""
    with contextlib.ExitStack() as stack:
        with _HELD_GUARD:
            held = target in _HELD
        if not held:
            stack.enter_context(hold_output(target))
        with _HELD_GUARD:
            holding = _HELD[target]
            if holding.writing:
                raise _busy_writer(target)(os.getpid())
            holding.writing = True
        try:
            yield
        finally:
            holding.writing = False


def check_held(target: Path) -> None:
    """Refuse to replace ``target`` when its lock file is no longer ours (deleted or replaced while we wrote):
    another writer may have started meanwhile. Raises ``OutputError``."""
    with _HELD_GUARD:
        holding = _HELD.get(target)
    if holding is None or holding.fd < 0:
        return
    fd = holding.fd
    lock = lock_path(target)
    if not _is_ours_at(lock, fd):
        raise OutputError(f"the lock file {lock} was removed or replaced while {target} was being written: "
                          f"another process may be writing it; nothing was replaced")


# -- a run folder's lock --------------------------------------------------------------------------------------
def _open_folder(folder: Path) -> int:
    return os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | os.O_CLOEXEC)


# file systems that cannot flock a folder (NFS emulates flock with POSIX locks, which need a writable file)
_NO_FOLDER_LOCKS = frozenset({errno.EBADF, errno.ENOLCK, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP})
FOLDER_LOCK = ".ssl-vsr-folder.lock"   # the fallback there: a lock file of ours in the folder


@contextlib.contextmanager
def folder_lock(folder: Path, busy: Busy) -> Iterator[None]:
    """Hold an exclusive lock on the folder itself while the block runs; ``busy(pid)`` when a live holder has it.

    Why the folder and not a file in it: nothing to delete (the lock survives any file removed from the folder)
    and nothing to plant a link at. Where the file system cannot lock a folder, a lock file of ours in it."""
    if fcntl is None:  # pragma: no cover
        yield
        return
    with contextlib.ExitStack() as held:
        fd = _open_folder(folder)
        held.callback(os.close, fd)
        if not _flock_folder(fd, fcntl.LOCK_EX, busy):
            held.enter_context(exclusive_lock(folder / FOLDER_LOCK, busy))
        yield


def _flock_folder(fd: int, how: int, busy: Busy) -> bool:
    """Lock the open folder ``fd`` (``how``: shared or exclusive); False where its file system cannot."""
    try:
        fcntl.flock(fd, how | fcntl.LOCK_NB)
    except BlockingIOError:
        raise busy(flock_holder(fd)) from None
    except OSError as e:
        if e.errno not in _NO_FOLDER_LOCKS:
            raise
        return False
    return True


def probe_folder_lock(folder: Path, busy: Busy) -> None:
    """Raise ``busy(pid)`` when a live holder has ``folder_lock(folder)``; changes nothing (where the file system
    cannot lock folders, the holder is found when the lock is taken)."""
    if fcntl is None or not folder.is_dir():  # pragma: no cover - no locks, or nothing to hold
        return
    fd = _open_folder(folder)
    try:
        _flock_folder(fd, fcntl.LOCK_SH, busy)
    finally:
        os.close(fd)


def flock_holder(fd: int) -> int | None:
    """The pid holding an ``flock`` on the file ``fd`` is open on, as the kernel lists it (Linux's
    ``/proc/locks``); None where the system does not say."""
    info = os.fstat(fd)
    where = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as fh:
            lines = fh.read(1 << 20).splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) > 5 and fields[1] == "FLOCK" and fields[5] == where and fields[4].isdigit():
            return int(fields[4])
    return None
