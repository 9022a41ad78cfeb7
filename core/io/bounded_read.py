"""Reading a small file the user names (a plan, a config, a study) from a regular file only, and by size.

Why: ``Path.read_text`` reads until end of file. ``/dev/zero`` reports a size of 0 and never ends (``train --plan
/dev/zero`` grew to 1.9 GB in seconds), a FIFO blocks the open until some writer comes, and a link loop raises an
``OSError`` traceback. Here the path must name a regular file before it is opened, the open cannot block, the file
is checked again once open (it may have been swapped meanwhile), and at most ``limit`` + 1 bytes are ever read.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

from ..errors import UserError
from .missing import kind_of, os_reason


def _refuse_special(mode: int, path: Path, what: str, error: type[UserError]) -> None:
    if not stat.S_ISREG(mode):
        raise error(f"{path}: is {kind_of(mode)}, not a {what} file (only a regular file is read)")


def read_regular(path: str | Path, limit: int, what: str, error: type[UserError] = UserError) -> bytes:
    """The bytes of the regular file ``path`` (``what`` names it in messages: "plan", "config"), refusing in one
    ``error`` line a missing file, a link loop, a folder, device, FIFO or socket, and more than ``limit`` bytes."""
    p = Path(path)
    try:
        _refuse_special(os.stat(p).st_mode, p, what, error)
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise error(f"{p}: cannot read the {what} ({os_reason(e, p)})") from None
    try:
        info = os.fstat(fd)
        _refuse_special(info.st_mode, p, what, error)     # swapped for something else between stat and open
        if info.st_size > limit:
            raise error(f"{p}: refused, {info.st_size:,} bytes is more than a {what} holds (limit {limit:,})")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(limit + 1)
    except OSError as e:
        raise error(f"{p}: cannot read the {what} ({os_reason(e, p)})") from None
    finally:
        os.close(fd)
    if len(data) > limit:                                  # grew while it was read
        raise error(f"{p}: refused, more than {limit:,} bytes is more than a {what} holds")
    return data
