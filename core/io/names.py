"""Output names the file system can hold together with the names the tool derives from them.

Why: beside an output ``NAME`` the tool writes ``.NAME.partial-XXXXXXXX`` (a staged file adds NAME's extension)
and ``.NAME.lock``. A name a few bytes under the file system's limit (255 bytes on most) is valid itself, but
its partial is not, and the write failed with an ``OSError`` traceback. Checked when the output is claimed,
before any work, in one line that says how long a name may be.
"""
from __future__ import annotations

import os
from pathlib import Path

from .disk import OutputError
from .partials import PARTIAL

_RANDOM_BYTES = 8           # what tempfile.mkdtemp puts after a partial's prefix
DEFAULT_NAME_MAX = 255      # NAME_MAX of ext4, xfs, btrfs, tmpfs


def name_max(folder: Path) -> int:
    """The longest name (bytes) the file system holding ``folder`` (or its nearest existing parent) takes."""
    here = Path(os.path.abspath(folder))
    while not here.exists() and here != here.parent:
        here = here.parent
    try:
        return os.pathconf(here, "PC_NAME_MAX")
    except (OSError, ValueError):
        return DEFAULT_NAME_MAX


def derived_bytes(target: Path) -> int:
    """Bytes the longest derived name (the staged file ``.NAME.partial-XXXXXXXX.EXT``) adds to ``target``'s."""
    return len(f".{PARTIAL}") + _RANDOM_BYTES + len(os.fsencode(target.suffix))


def check_name_length(target: Path) -> None:
    """One ``OutputError`` line unless ``target``'s name and the names derived from it fit the file system."""
    size, extra, limit = len(os.fsencode(target.name)), derived_bytes(target), name_max(target.parent)
    if size + extra > limit:
        raise OutputError(f"{target.name[:24]}...{target.name[-12:]}: an output name of {size} bytes is too long: "
                          f"the file system takes names of up to {limit} bytes and the tool's temporary file "
                          f"beside it adds {extra}; give a name of at most {limit - extra} bytes")
