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


def our_partials(target: Path) -> list[Path]:
    """Every partial of ours beside ``target``."""
    prefix = f".{target.name}{PARTIAL}"
    try:
        return [p for p in target.parent.iterdir() if p.name.startswith(prefix) and is_our_partial(p, target)]
    except FileNotFoundError:
        return []


def new_partial_folder(target: Path) -> Path:
    """A new, marked partial folder beside ``target`` (the next writer recognises it if we are killed)."""
    folder = Path(tempfile.mkdtemp(prefix=f".{target.name}{PARTIAL}", dir=target.parent))
    try:
        os.close(os.open(folder / MARKER, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except BaseException:
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
