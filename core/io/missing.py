"""Why a path the user named leads to nothing: the one owner of "no such file", "a loop of symbolic links" and
"a symbolic link to nothing"; and what it leads to when that is not what was asked for ("a named pipe (FIFO)").

Why: ``Path.exists()`` is False for a missing name, a link to nothing, a loop of links and a folder on the way
that cannot be searched alike, so every command said "does not exist" (or "no such file") for a link loop given as
``plan --calib`` or ``eval --gt``, and the user looked for a file that is there. Here ``stat`` says which it is.
"""
from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

LINK_LOOP = "a loop of symbolic links"
_KINDS = ((stat.S_ISREG, "a file"), (stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a named pipe (FIFO)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def kind_of(mode: int) -> str:
    """What a ``st_mode`` is, in a few words: "a named pipe (FIFO)", "a folder", "a file" ..."""
    return next((name for test, name in _KINDS if test(mode)), "something other than a file or folder")


def what_is(path: str | os.PathLike) -> str:
    """What ``path`` leads to (``kind_of``), or why nothing (``why_missing``), for a message refusing it."""
    try:
        return kind_of(os.stat(path).st_mode)
    except OSError as e:
        return os_reason(e, path)


def os_reason(e: OSError, path: str | os.PathLike, thing: str = "file") -> str:
    """A few words for why ``path`` could not be reached or opened (``thing``: "file", "folder", "clip" ...)."""
    p = Path(path)
    if e.errno == errno.ELOOP:
        return LINK_LOOP if p.is_symlink() else f"a path through {LINK_LOOP}"
    if e.errno == errno.ENOENT:
        if p.is_symlink():
            try:
                return f"a symbolic link to nothing: it points to {os.readlink(p)}"
            except OSError:
                return "a symbolic link to nothing"
        return f"no such {thing}"
    if e.errno == errno.ENOTDIR:
        return f"no such {thing}: a part of the path is a file, not a folder"
    if e.errno == errno.ENAMETOOLONG:
        return "a name longer than the file system takes"
    return e.strerror or str(e)


def why_missing(path: str | os.PathLike, thing: str = "file") -> str | None:
    """None when ``path`` leads to something (a file, folder, device ...), else why not, in a few words."""
    try:
        os.stat(path)
    except OSError as e:
        return os_reason(e, path, thing)
    except ValueError:                      # an embedded NUL byte
        return f"no such {thing} (the name holds a NUL byte)"
    return None
