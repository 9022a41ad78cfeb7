"""What the disk says when a write fails, as one line naming it; flushing; the modes new files get.

Why a module of its own: every writer (a file, a folder, a lock, a swap) turns the same kernel answers (full,
over quota, read-only, failing) into the same one-line ``OutputError`` naming the disk, never a traceback.
"""
from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path
from typing import Iterator

from ..errors import UserError

class OutputError(UserError):
    """An output that cannot be written without losing something (or cannot be written at all)."""


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


UMASK = _umask()   # read once: changing the umask briefly is not thread-safe


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):   # some file systems cannot fsync a directory
        fsync_file(path)


DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS, errno.EBUSY})
# what torch.save's C++ writer says when the file system refuses bytes (it loses the errno on the way)
_TORCH_WRITE_FAILED = ("unexpected pos", "PytorchStreamWriter failed", "file write failed")


def disk_of(path: Path) -> Path:
    """The mount point of the file system that holds ``path`` (or would hold it): the disk a message names."""
    here = Path(os.path.abspath(path))
    while not here.exists() and here != here.parent:
        here = here.parent
    while here != here.parent and not os.path.ismount(here):
        here = here.parent
    return here


def disk_full(path: Path) -> str | None:
    """Why the file system holding ``path`` takes no more (space or inodes), or None when it still has room."""
    disk = disk_of(path)
    try:
        vfs = os.statvfs(disk)
    except OSError:
        return None
    if vfs.f_files and vfs.f_favail == 0:
        return f"the disk is full: no free inodes (file entries) left on the file system at {disk}"
    if vfs.f_bavail * vfs.f_frsize < (1 << 20):
        return f"the disk is full: no space left on the file system at {disk}"
    return None


def disk_reason(path: Path, err: OSError) -> str:
    """What a failed write means for the user, naming the disk (no errno numbers, no traceback)."""
    disk = disk_of(path)
    if err.errno == errno.ENOSPC:
        return disk_full(path) or f"the disk is full: no space or no free inodes left on the file system at {disk}"
    if err.errno == errno.EDQUOT:
        return f"the disk is full for you: your quota on the file system at {disk} is used up"
    if err.errno == errno.EROFS:
        return f"the file system at {disk} is read-only"
    if err.errno == errno.EBUSY:
        return f"{path} is busy (a mount point, or in use by the system)"
    if err.errno == errno.EIO:
        return f"an input/output error on the disk at {disk} (a failing or removed device)"
    return err.strerror or str(err)


def write_failed(path: Path) -> str:
    """A write that failed without an errno (torch.save): a full disk when the disk says so, else the disk."""
    return disk_full(path) or (f"writing to the file system at {disk_of(path)} failed (the disk is full, over "
                                f"quota or failing)")


@contextlib.contextmanager
def disk_errors(target: Path) -> Iterator[None]:
    """A full disk (space, inodes, quota), a read-only, busy or failing device while writing becomes one line
    naming the disk and saying nothing was replaced; so does torch.save's report of a failed write."""
    try:
        yield
    except OSError as e:
        if e.errno not in DISK_ERRNOS:
            raise
        raise OutputError(f"cannot write {target}: {disk_reason(target, e)}; nothing was replaced") from None
    except RuntimeError as e:
        if not any(text in str(e) for text in _TORCH_WRITE_FAILED):
            raise
        raise OutputError(f"cannot write {target}: {write_failed(target)}; nothing was replaced") from None

