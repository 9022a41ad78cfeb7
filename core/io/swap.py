"""The folder swap: a complete folder takes the place of the one at its target, so that a kill at any instant
leaves the whole old or the whole new folder there, with a journal the next writer finishes from.

Why a module of its own: it is the one multi-step write of the project, and its journal is read back from disk,
so it has to recognise what is its own (by marker and by inode) and nothing else.
"""
from __future__ import annotations

import ctypes
import errno
import functools
import json
import os
import stat
import sys
from pathlib import Path
from typing import Callable

from .disk import OutputError, fsync_dir, fsync_file
from .partials import MARKER, is_partial_name, new_partial_folder, remove

SWAP_RECORD = "swap.json"     # inside a marked partial folder: the journal of one folder swap (commit_folder)
_SWAP_FORMAT = "ssl-vsr-swap"
_OLD = "replaced"             # where the old folder waits inside the record when the system cannot exchange


def commit_folder(tmp: Path, target: Path, replace: bool) -> None:
    """Move the complete folder ``tmp`` to ``target``, so that a kill at any instant leaves at ``target`` the
    whole old folder or the whole new one, and nothing of ours that the next writer cannot recognise.

    1. A swap record is written first: a partial folder of ours (marker inside) holding ``swap.json``, made
       complete by a rename, that names the staged folder and the (device, inode) of the new and the old folder.
    2. The staged folder loses its marker (the record now claims it), then takes the target's place: over
       nothing or an empty folder by ``rename`` (atomic, and it never replaces a folder holding files); over
       a folder with files by ``renameat2(RENAME_EXCHANGE)`` on Linux (atomic: the old folder ends under
       the staged name), else by two renames through the record (``target`` is absent between them).
    3. The old folder is removed, then the record.
    ``replace``: the target is a folder holding files the caller may replace (else it is absent or empty).
    The next writer of the target (``core.io.output``'s sweep, under its lock) finishes a record a kill left: the
    folder at ``target`` is kept whichever it is; a missing one is completed from the new folder (or, failing
    that, restored from the old); then everything the record names is removed. Things are removed only when
    their inode is the one the record wrote, or when they lie inside our marked record.
    """
    record = _write_swap_record(tmp, target)
    try:
        (tmp / MARKER).unlink()
        fsync_dir(tmp)
        if not replace:
            try:
                os.rename(tmp, target)
            except OSError as e:
                if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
                raise OutputError(f"{target} received files while it was being written: kept them, nothing "
                                  f"replaced") from None
        elif not _exchange(tmp, target):
            os.rename(target, record / _OLD)
            os.rename(tmp, target)
        fsync_dir(target.parent)
    except BaseException:
        finish_swap(record, target, forward=False)   # back to the old folder; the caller reports the failure
        raise
    finish_swap(record, target, forward=True)


def identity(path: Path) -> list[int] | None:
    """(device, inode) of a real folder at ``path``, None when there is none (a symlink is not one)."""
    try:
        info = os.lstat(path)
    except OSError:
        return None
    return [info.st_dev, info.st_ino] if stat.S_ISDIR(info.st_mode) else None


def _write_swap_record(staged: Path, target: Path) -> Path:
    """A marked partial folder holding the journal of the swap of ``staged`` into ``target`` (see commit_folder).

    The journal appears whole or not at all (written beside, flushed, renamed): a record without one is a
    plain partial, and then the staged folder still holds its own marker.
    """
    record = new_partial_folder(target)
    try:
        journal = {"format": _SWAP_FORMAT, "target": target.name, "staged": staged.name,
                   "new": identity(staged), "old": identity(target)}
        part = record / f"{SWAP_RECORD}.part"
        part.write_text(json.dumps(journal), encoding="utf-8")
        fsync_file(part)
        os.rename(part, record / SWAP_RECORD)
        fsync_dir(record)
    except BaseException:
        remove(record)
        raise
    return record


def _read_swap_record(record: Path, target: Path) -> dict | None:
    try:
        journal = json.loads((record / SWAP_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(journal, dict) or journal.get("format") != _SWAP_FORMAT or journal.get("target") != \
            target.name or not isinstance(journal.get("new"), list):
        return None
    staged = journal.get("staged")
    if not isinstance(staged, str) or not is_partial_name(staged, target):
        return None
    return journal


def finish_swap(record: Path, target: Path, *, forward: bool) -> None:
    """Bring a swap to an end from its record: ``target`` whole (the new folder if ``forward``, when it is missing;
    else the old one), the other folder and the record removed. Safe to run again after a kill."""
    journal = _read_swap_record(record, target)
    if journal is None:
        return                                 # a plain partial: swept like any other
    staged = target.parent / journal["staged"]
    ours = [i for i in (journal["new"], journal.get("old")) if i is not None]   # what this swap moved; only these

    def moved(path: Path) -> bool:       # the staged name holds a folder this swap moved (new, or old after exchange)
        return identity(path) in ours

    if not os.path.lexists(target):
        candidates = [staged, record / _OLD] if forward else [record / _OLD, staged]
        for source in candidates:
            if moved(source) if source == staged else identity(source) is not None:
                os.rename(source, target)
                fsync_dir(target.parent)
                break
    if moved(staged) and identity(staged) != identity(target):
        remove(staged)
    remove(record / _OLD)
    (record / SWAP_RECORD).unlink(missing_ok=True)    # the journal goes last but one: the rest is a plain partial
    remove(record)


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


@functools.lru_cache(maxsize=1)
def _renameat2() -> Callable | None:
    """glibc's renameat2 (Linux 3.15+, glibc 2.28+), or None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


def _exchange(a: Path, b: Path) -> bool:
    """Swap the two existing paths ``a`` and ``b`` in one atomic step; False where the system or the file system
    cannot (then nothing happened)."""
    fn = _renameat2()
    if fn is None:
        return False
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EPERM):
        return False
    raise OSError(err, os.strerror(err), str(a), None, str(b))

