"""The tool's temporaries beside an output (``.<name>.partial-XXXXXXXX``): how they are made and recognised.

Why a module of its own: a killed writer leaves them, and the next writer removes them — so what counts as ours
must never be decided by a name alone (a user's ``.model.pth.partial-backup01`` is theirs). Every partial is a
folder made by ``mkdtemp`` with the marker file ``.ssl-vsr-partial`` inside (a staged file is written inside one
too); only a real folder of exactly that name holding the marker as a regular file, or a streaming scratch folder
holding its owner file, is ever removed — and an empty folder of that exact name (a kill between ``mkdtemp`` and
the marker leaves one) only by ``rmdir``, which cannot remove anything else.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path

PARTIAL = ".partial-"
MARKER = ".ssl-vsr-partial"   # inside every partial folder while it is ours to remove
SCRATCH_OWNER = ".owner"      # core.stream.scratch's lock file: a scratch folder beside the output is ours too
SCRATCH_OWNER_TEXT = b"ssl-vsr scratch\n"   # what that lock file holds (a user's .owner file does not)
_RANDOM = "[a-z0-9_]{8}"      # what tempfile.mkdtemp puts after the prefix


def is_partial_name(name: str, target: Path) -> bool:
    """The exact name ``tempfile`` gives a partial of ``target`` (a staged file inside one adds a suffix)."""
    return bool(re.fullmatch(re.escape(f".{target.name}{PARTIAL}") + _RANDOM + r"(\.[A-Za-z0-9]{1,10})?", name))


def _regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def is_scratch_owner(path: Path) -> bool:
    """``path`` is the owner file a streaming scratch folder of ours holds: a regular file with our text."""
    if not _regular(path):
        return False
    try:
        with open(path, "rb") as fh:
            return fh.read(len(SCRATCH_OWNER_TEXT) + 1) == SCRATCH_OWNER_TEXT
    except OSError:
        return False


def is_our_partial(path: Path, target: Path) -> bool:
    """A temporary of ours: a real folder with the partial's exact name and our marker (or a scratch folder's
    owner file) inside, never a link, a file, or a folder without the marker."""
    try:
        is_dir = stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False
    return is_dir and is_partial_name(path.name, target) and \
        (_regular(path / MARKER) or is_scratch_owner(path / SCRATCH_OWNER) or not any(path.iterdir()))


def _scratch_held(folder: Path) -> bool:
    """A streaming scratch folder whose run still holds the ``flock`` on its owner file."""
    import fcntl

    if not is_scratch_owner(folder / SCRATCH_OWNER):
        return False
    try:
        fd = os.open(folder / SCRATCH_OWNER, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)          # closing drops the probe's own lock
    return False


def _writer_alive(folder: Path) -> bool:
    """The partial's writer still runs: the pid its marker holds is alive, or its scratch run holds its lock (a
    writer whose output lock file was deleted under it: its partial is work in progress, not a leftover)."""
    if _scratch_held(folder):
        return True
    try:
        with open(folder / MARKER, "rb") as fh:
            pid = int(fh.read(32).decode("ascii").strip() or 0)
    except (OSError, ValueError, UnicodeDecodeError):
        return False
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:          # alive, another user's
        return True
    return True


def our_partials(target: Path) -> list[Path]:
    """Every partial of ours beside ``target`` that no live writer is still filling."""
    prefix = f".{target.name}{PARTIAL}"
    try:
        return [p for p in target.parent.iterdir()
                if p.name.startswith(prefix) and is_our_partial(p, target) and not _writer_alive(p)]
    except FileNotFoundError:
        return []


def new_partial_folder(target: Path) -> Path:
    """A new, marked partial folder beside ``target`` (the next writer recognises it if we are killed; the marker
    holds our pid, so while we live nobody takes it for a leftover)."""
    folder = Path(tempfile.mkdtemp(prefix=f".{target.name}{PARTIAL}", dir=target.parent))
    try:
        fd = os.open(folder / MARKER, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, f"{os.getpid()}\n".encode())
        finally:
            os.close(fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(folder / MARKER)
        os.rmdir(folder)
        raise
    return folder


def staged_name(folder: Path, suffix: str) -> Path:
    """Where a staged file is written inside its partial ``folder``: its name plus ``suffix`` (encoders that pick
    a format from the extension see the target's)."""
    return folder / f"{folder.name}{suffix}"


def remove(path: Path) -> None:
    """Remove a temporary of ours (a link is removed as a link, never followed)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
