"""The one rule for everything the tool writes: nothing the user owns is ever lost.

- Never over an input of the same command (nor inside or around one), never over an existing file or a folder
  that holds files unless the caller says ``overwrite``.
- Never through a symbolic link: a link at an output's name (or at its lock's) is refused in one line, never
  followed, never replaced.
- Every output is built in a hidden, marked temporary folder beside its target (``.<name>.partial-XXXX``, see
  ``core.io.partials``) and moved into place only when complete, flushed and verified. Ctrl-C, an exception, a
  full disk or a failed verification removes the temporary and leaves the previous target as it was; SIGKILL
  leaves only a marked ``.partial`` that never looks finished (and is swept by the next writer of the target).
- A folder replaces a folder in one atomic step where the system allows (``core.io.swap``): a kill at any point
  leaves the whole old or the whole new folder at its name, and the next writer finishes the swap. A replaced
  folder's owner, group, mode (setgid too) and ACLs pass to the new one (``core.io.folder_identity``).
- A full disk (space or inodes), a quota, a read-only or failing disk, a busy mount point: one line naming the
  disk and saying nothing was replaced (``OutputError``), from the lock file to the final swap.
- A second writer of the same target is refused while the first holds it (``core.io.locks``; a command takes the
  lock when it starts, ``hold_output``, and keeps it until it ends).
- Files get the normal permissions of the user's umask (``mkstemp`` alone would leave them 0600).

This module is the only place in the project that opens files for writing; callers get a temporary path to write
to (encoders that pick a format from the extension get one that ends in the target's extension).
"""
from __future__ import annotations

import contextlib
import functools
import os
import re
import stat
from pathlib import Path
from typing import Callable, Iterable, Iterator, Literal

from ..errors import UserError
from .disk import UMASK, OutputError, disk_errors, disk_of as _disk_of, fsync_dir, \
    fsync_file as _fsync_file  # noqa: F401  (re-exported: callers and tests name them here)
from .folder_identity import FolderIdentity
from .missing import LINK_LOOP
from .names import check_name_length
from .locks import check_held, exclusive_lock, hold_output, writer_lock  # noqa: F401
from .partials import MARKER, PARTIAL, new_partial_folder, our_partials, remove, staged_name  # noqa: F401
from .swap import SWAP_RECORD, commit_folder, finish_swap, identity as _identity  # noqa: F401
from .swap import _renameat2  # noqa: F401

__all__ = ["OutputError", "claim_output", "staged_file", "staged_folder", "write_bytes", "write_text", "append_text",
           "exclusive_lock", "held_output", "hold_output", "path_relation"]

PathLike = str | os.PathLike
Verify = Callable[[Path], None]
FRAME_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")   # what FolderSink / write_frames write
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _resolved(path: PathLike) -> Path:
    try:
        return Path(path).expanduser().resolve(strict=False)
    except (RuntimeError, OSError):     # a symbolic link loop (RuntimeError before Python 3.13, OSError after)
        raise UserError(f"{path}: {LINK_LOOP}") from None


def _output_path(path: PathLike) -> Path:
    """``path`` with its folder resolved but its last name kept: a link at that name is the output's own name, to
    refuse, not a place to follow to."""
    plain = Path(path).expanduser()
    if plain.name in ("", ".", ".."):
        return _resolved(plain)
    return _resolved(plain.parent) / plain.name


def _refuse_link(target: Path) -> None:
    if target.is_symlink():
        raise OutputError(f"{target} is a symbolic link: refusing to write through it or over it; remove the link, "
                          f"or choose another output")


def _same(a: Path, b: Path) -> bool:
    if a == b:
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def path_relation(target: PathLike, other: PathLike) -> Literal["same", "inside", "holds"] | None:
    """How ``target`` lies relative to ``other`` (both resolved: symlinks and ``..`` cannot hide an overlap).

    Why one function: every "an output must not touch an input" rule (here, and a training run's folder
    against its datasets and checkpoints) has to agree on what overlapping means.
    """
    a, b = _resolved(target), _resolved(other)
    if _same(a, b):
        return "same"
    if b in a.parents:
        return "inside"
    if a in b.parents:
        return "holds"
    return None


def _check_not_input(target: Path, inputs: Iterable[PathLike | None]) -> None:
    for item in inputs:
        if item is None:
            continue
        src = _resolved(item)
        relation = path_relation(target, src)
        if relation == "same":
            raise OutputError(f"{target} is an input of this command: choose another output")
        if relation == "inside":
            raise OutputError(f"{target} is inside the input {src}: choose an output outside it")
        if relation == "holds":
            raise OutputError(f"{target} holds the input {src}: choose an output that does not contain it")


def _check_parent(target: Path) -> None:
    """The nearest existing ancestor must be a folder we may write in (folders below it are created)."""
    parent = target.parent
    while not parent.exists():
        if parent == parent.parent:
            break
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"cannot write {target}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {target}: the folder {parent} is read-only or not writable")


def _protected_folders() -> list[Path]:
    """Folders never replaced as a whole: the filesystem root, the home folder, the working folder and its parents."""
    found = [Path(os.sep).resolve()]
    with contextlib.suppress(RuntimeError, KeyError, OSError):
        found.append(Path.home().resolve())
    with contextlib.suppress(OSError):
        cwd = Path.cwd().resolve()
        found += [cwd, *cwd.parents]
    return found


def _mount_points() -> set[str]:
    """Every mount point the kernel lists for this process (Linux); empty elsewhere.

    Why besides ``os.path.ismount``: a bind mount of a folder of the same file system has its parent's device,
    so ``ismount`` misses it, and replacing it ends in EBUSY.
    """
    try:
        with open("/proc/self/mountinfo", "rb") as fh:
            lines = fh.read().decode("utf-8", "surrogateescape").splitlines()
    except OSError:
        return set()
    unescape = functools.partial(re.sub, r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)))
    return {unescape(line.split(" ")[4]) for line in lines if len(line.split(" ")) > 4}


def _is_mount_point(path: Path) -> bool:
    return os.path.ismount(path) or str(path) in _mount_points()


def _check_replaceable(target: Path, kind: str) -> None:
    """What exists at ``target`` is a regular file or folder the tool may replace: never a device, FIFO, socket,
    mount point, the working folder (or a parent of it), the home folder or ``/``, nor a folder holding anything
    but the image frames our folder outputs hold. Raises ``OutputError``; nothing at ``target`` is fine."""
    try:
        mode = os.lstat(target).st_mode
    except FileNotFoundError:
        return
    except OSError as e:
        raise OutputError(f"cannot write {target}: {e.strerror or e}") from None
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise OutputError(f"{target} is not a regular file or folder (a device, FIFO or socket): refusing to "
                          f"replace it, choose another output")
    if not stat.S_ISDIR(mode):
        return
    if any(_same(target, p) for p in _protected_folders()):
        raise OutputError(f"{target} is the filesystem root, your home folder or the working folder (or holds it): "
                          f"refusing to replace it, choose a new folder")
    if _is_mount_point(target):
        raise OutputError(f"{target} is a mount point: refusing to replace it, choose a folder inside it")
    if kind != "folder":
        return
    for entry in target.iterdir():
        if entry.is_symlink() or not entry.is_file() or entry.suffix.lower() not in FRAME_EXTS:
            raise OutputError(f"{target} holds {entry.name}, which is not a frame this tool writes: refusing to "
                              f"replace the folder, choose a new folder")


def claim_output(path: PathLike, *, kind: Literal["file", "folder"] = "file", inputs: Iterable[PathLike | None] = (),
                 overwrite: bool = False) -> Path:
    """Check, before any work, that ``path`` may be written; return it (its folder resolved). Raises
    ``OutputError``."""
    target = _output_path(path)
    check_name_length(target)
    _refuse_link(target)
    _check_not_input(target, inputs)
    if target.exists():
        if overwrite or kind == "folder":
            _check_replaceable(target, kind if overwrite else "")
        if kind == "file" and target.is_dir():
            raise OutputError(f"{target} is a folder: give the path of a file to write")
        if kind == "folder" and not target.is_dir():
            raise OutputError(f"{target} is an existing file: give the path of a folder to write")
        if kind == "file" and not overwrite:
            raise OutputError(f"{target} already exists: refusing to replace it (use --overwrite to replace it)")
        if kind == "folder" and not overwrite and any(target.iterdir()):
            raise OutputError(f"{target} already holds files: refusing to write into it "
                              f"(choose a new folder, or --overwrite to replace the whole folder)")
        if kind == "folder":
            FolderIdentity.of(target).check_keepable()
    _check_parent(target)
    return target


@contextlib.contextmanager
def held_output(path: PathLike, *, kind: Literal["file", "folder"] = "file", inputs: Iterable[PathLike | None] = (),
                overwrite: bool = False) -> Iterator[Path]:
    """``claim_output``, then hold the output's lock for the whole block (a command's computation): a second
    command writing the same output is refused when it starts, not after both did all the work. Yields the
    claimed target; the writes of this process to it inside the block use this lock."""
    inputs = tuple(inputs)
    target = claim_output(path, kind=kind, inputs=inputs, overwrite=overwrite)
    with hold_output(target):
        yield claim_output(target, kind=kind, inputs=inputs, overwrite=overwrite)   # a writer may have just finished


def _sweep_partials(target: Path) -> None:
    """Finish the folder swaps killed writers of this target left, then remove their partials (no live writer
    exists: we hold the lock). Runs in every writer of the target before it checks what lies there."""
    for record in our_partials(target):
        if (record / SWAP_RECORD).is_file():
            finish_swap(record, target, forward=True)
    for stale in our_partials(target):
        if any(stale.iterdir()):
            remove(stale)
        else:
            with contextlib.suppress(OSError):
                os.rmdir(stale)          # empty: a folder that gained a file since is not removed


def _commit_file(tmp: Path, target: Path, overwrite: bool) -> None:
    check_held(target)
    if overwrite:
        _refuse_link(target)
        _check_replaceable(target, "file")      # whatever appeared meanwhile is checked again
        os.replace(tmp, target)                 # replaces the name (a link that appeared is replaced, not followed)
        return
    try:  # a hard link never replaces an existing file, so a file that appeared meanwhile is kept
        os.link(tmp, target)
    except FileExistsError:
        raise OutputError(f"{target} appeared while it was being written: kept it, nothing replaced") from None
    except OSError:  # file systems without hard links
        if os.path.lexists(target):
            raise OutputError(f"{target} appeared while it was being written: kept it, nothing replaced") from None
        os.replace(tmp, target)
        return
    tmp.unlink()


@contextlib.contextmanager
def staged_file(path: PathLike, *, inputs: Iterable[PathLike | None] = (), overwrite: bool = False,
                suffix: str | None = None, verify: Verify | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (inside a marked partial folder); on a clean exit flush, verify and
    move it into place."""
    inputs = tuple(inputs)
    target = claim_output(path, kind="file", inputs=inputs, overwrite=overwrite)
    with disk_errors(target), writer_lock(target):
        _sweep_partials(target)
        claim_output(target, kind="file", inputs=inputs, overwrite=overwrite)   # a writer may have just finished
        folder = new_partial_folder(target)
        try:
            tmp = staged_name(folder, target.suffix if suffix is None else suffix)
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600))
            yield tmp
            _fsync_file(tmp)
            if verify is not None:
                verify(tmp)
            os.chmod(tmp, 0o666 & ~UMASK)
            _commit_file(tmp, target, overwrite)
            fsync_dir(target.parent)
        finally:
            remove(folder)


@contextlib.contextmanager
def staged_folder(path: PathLike, *, inputs: Iterable[PathLike | None] = (), overwrite: bool = False,
                  verify: Verify | None = None) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on a clean exit flush, verify and move it into place.

    An existing empty folder is replaced; with ``overwrite`` an existing folder with files is replaced as a whole,
    and only after the new one is complete, in one step a kill cannot split (``core.io.swap``). A replaced
    folder's owner, mode and ACLs are the new one's from the start (its files inherit a default ACL and a setgid
    group). ``verify`` sees the hidden marker file ``.ssl-vsr-partial`` beside the written files (it goes just
    before the swap).
    """
    inputs = tuple(inputs)
    target = claim_output(path, kind="folder", inputs=inputs, overwrite=overwrite)
    with disk_errors(target), writer_lock(target):
        _sweep_partials(target)           # a killed swap is finished first: what lies at the target is whole
        claim_output(target, kind="folder", inputs=inputs, overwrite=overwrite)
        tmp = new_partial_folder(target)  # a SIGKILL leaves its marker: the next writer knows the folder is ours
        try:
            kept = FolderIdentity.of(target) if target.is_dir() else None
            if kept is not None:
                kept.apply(tmp)
            yield tmp
            for f in tmp.rglob("*"):
                if f.is_file():
                    _fsync_file(f)
            if verify is not None:
                verify(tmp)
            _apply_modes(tmp, folder_too=kept is None)
            commit_folder(tmp, target, _replaces_files(target, overwrite))
        finally:
            remove(tmp)


def _replaces_files(target: Path, overwrite: bool) -> bool:
    """Whether the swap replaces a folder holding files (checked again just before it: files may have come)."""
    _refuse_link(target)
    if not target.exists():
        return False
    _check_replaceable(target, "folder" if overwrite else "")
    check_held(target)
    if not any(target.iterdir()):
        return False
    if not overwrite:
        raise OutputError(f"{target} received files while it was being written: kept them, nothing replaced")
    return True


def _apply_modes(folder: Path, folder_too: bool) -> None:
    """The user's umask on what was written (and on the folder itself unless it keeps a replaced one's mode)."""
    if folder_too:
        os.chmod(folder, 0o777 & ~UMASK)
    for f in folder.rglob("*"):
        mode = 0o777 if f.is_dir() else 0o666
        if f.is_file() and f.stat().st_mode & stat.S_IXUSR:
            mode = 0o777
        os.chmod(f, mode & ~UMASK)


# -- small helpers ---------------------------------------------------------------------------------------------
def write_bytes(path: PathLike, data: bytes, **kwargs) -> Path:
    """Write ``data`` to ``path`` under the rule (keyword arguments as ``staged_file``)."""
    with staged_file(path, **kwargs) as tmp:
        tmp.write_bytes(data)
    return _output_path(path)


def write_text(path: PathLike, text: str, **kwargs) -> Path:
    """Write UTF-8 ``text`` to ``path`` under the rule (keyword arguments as ``staged_file``)."""
    return write_bytes(path, text.encode("utf-8"), **kwargs)


def append_text(path: PathLike, text: str) -> None:
    """Append to a log the tool owns (a run's ``train.log``): the one kind of file written in place, and never
    through a link nor into anything but a regular file.

    Callers make sure the file is theirs (a run folder refuses to start where its log name is taken).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK | _NOFOLLOW | os.O_CLOEXEC,
                     0o666 & ~UMASK)
    except OSError:
        if not target.is_symlink():
            raise
        raise OutputError(f"{target} is a symbolic link: refusing to write through it; remove the link") from None
    with os.fdopen(fd, "a", encoding="utf-8") as fh:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OutputError(f"{target} is not a regular file: refusing to write into it; move it away")
        if info.st_nlink > 1:       # a hard link: appending in place would change the file under its other name
            raise OutputError(f"{target} has {info.st_nlink - 1} other name(s) (a hard link to a file elsewhere): "
                              f"refusing to append to it; move it away")
        fh.write(text)
