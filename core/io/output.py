"""The one rule for everything the tool writes: nothing the user owns is ever lost.

- Never over an input of the same command (nor inside or around one), never over an existing file or a folder
  that holds files unless the caller says ``overwrite``.
- Every output is built under a hidden temporary name beside its target (``.<name>.partial-XXXX``) and moved into
  place only when complete, flushed and verified. Ctrl-C, an exception, a full disk or a failed verification
  removes the temporary and leaves the previous target as it was; SIGKILL leaves only a hidden ``.partial``
  that never looks finished (and is swept by the next writer of the same target).
- A second writer of the same target is refused while the first holds it (an advisory lock beside the target).
- Files get the normal permissions of the user's umask (``mkstemp`` alone would leave them 0600).

This module is the only place in the project that opens files for writing; callers get a temporary path to write
to (encoders that pick a format from the extension get one that ends in the target's extension).
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Callable, Iterable, Iterator, Literal

from ..errors import UserError

try:  # POSIX advisory locks; Windows has none, there a second writer is not detected
    import fcntl
except ImportError:  # pragma: no cover - not on the platforms we test
    fcntl = None  # type: ignore[assignment]

__all__ = ["OutputError", "claim_output", "staged_file", "staged_folder", "write_bytes", "write_text", "append_text",
           "exclusive_lock", "path_relation", "probe_lock"]

PathLike = str | os.PathLike
Verify = Callable[[Path], None]
PARTIAL = ".partial-"
MARKER = ".ssl-vsr-partial"   # inside a staged folder while it is built: the sweep removes only folders with it
_SCRATCH_OWNER = ".owner"     # core.stream.scratch's lock file: a scratch folder beside the output is ours too
_RANDOM = "[a-z0-9_]{8}"      # what tempfile.mkstemp / mkdtemp put after the prefix
FRAME_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")   # what FolderSink / write_frames write


class OutputError(UserError):
    """An output that cannot be written without losing something (or cannot be written at all)."""


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _umask()   # read once: changing the umask briefly is not thread-safe


def _resolved(path: PathLike) -> Path:
    return Path(path).expanduser().resolve(strict=False)


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


def _check_replaceable(target: Path, kind: str) -> None:
    """What exists at ``target`` is a regular file or folder the tool may replace: never a device, FIFO, socket,
    mount point, the working folder (or a parent of it), the home folder or ``/``, nor a folder holding anything
    but the image frames our folder outputs hold. Raises ``OutputError``; nothing at ``target`` is fine."""
    try:
        mode = os.stat(target).st_mode
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
    if os.path.ismount(target):
        raise OutputError(f"{target} is a mount point: refusing to replace it, choose a folder inside it")
    if kind != "folder":
        return
    for entry in target.iterdir():
        if entry.is_symlink() or not entry.is_file() or entry.suffix.lower() not in FRAME_EXTS:
            raise OutputError(f"{target} holds {entry.name}, which is not a frame this tool writes: refusing to "
                              f"replace the folder, choose a new folder")


def claim_output(path: PathLike, *, kind: Literal["file", "folder"] = "file", inputs: Iterable[PathLike | None] = (),
                 overwrite: bool = False) -> Path:
    """Check, before any work, that ``path`` may be written; return it resolved. Raises ``OutputError``."""
    target = _resolved(path)
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
    _check_parent(target)
    return target


# -- locking ------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def exclusive_lock(lock: Path, busy: Callable[[int | None], Exception]) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the file ``lock`` while the block runs; raise ``busy(pid)`` at once when
    another holder has it (``pid``: the holder's process id as it wrote it in the file, None if unknown).

    Why ``flock`` on a file of its own: the kernel drops the lock when its holder ends, ``kill -9`` and power
    loss included, so a dead holder never blocks anyone; the lock belongs to one open file, so a second
    thread of the same process is refused like a second process. The holder's pid is written into the file
    for the refusal message, and the file is removed on release; a contender that opened the removed file
    retries on the live one.
    """
    if fcntl is None:  # pragma: no cover
        yield
        return
    lock.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o666 & ~_UMASK)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _holder_pid(fd)
            os.close(fd)
            raise busy(pid) from None
        try:  # the holder before us may have removed the lock file after we opened it: lock the live one
            if os.fstat(fd).st_ino == os.stat(lock).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()
        os.close(fd)


def probe_lock(lock: Path, busy: Callable[[int | None], Exception]) -> None:
    """Raise ``busy(pid)`` when a live holder has ``exclusive_lock(lock)``; creates nothing.

    Why: a refusal before any write must leave a folder exactly as it was, and a free lock usually has no file.
    """
    if fcntl is None:  # pragma: no cover
        return
    try:
        fd = os.open(lock, os.O_RDONLY)
    except OSError:
        return                          # no lock file: nobody holds it
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        raise busy(_holder_pid(fd)) from None
    finally:
        os.close(fd)


def _holder_pid(fd: int) -> int | None:
    """The pid a lock's holder wrote into the lock file (None while it has not written it yet)."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def _writer_lock(target: Path) -> contextlib.AbstractContextManager[None]:
    """Hold ``.<name>.lock`` beside the target; refuse when another process holds it.

    A lock of ours is an empty regular file or holds a pid; anything else at that name is the user's and is
    never truncated or removed.
    """
    lock = target.parent / f".{target.name}.lock"
    with contextlib.suppress(FileNotFoundError):
        info = os.lstat(lock)
        ours = stat.S_ISREG(info.st_mode) and info.st_size <= 32 and re.fullmatch(rb"\d*\n?", lock.read_bytes())
        if not ours:
            raise OutputError(f"{lock} is in the way of this tool's lock for {target}: move it, or choose another "
                              f"output")
    return exclusive_lock(lock, lambda pid: OutputError(
        f"another process is writing {target} right now: wait for it or choose another output"))


def _is_our_partial(path: Path, target: Path) -> bool:
    """A killed writer's leftover: the exact name ``tempfile`` gave it and, for a folder, our marker inside."""
    if not re.fullmatch(re.escape(f".{target.name}{PARTIAL}") + _RANDOM + r"(\.[A-Za-z0-9]{1,10})?", path.name):
        return False
    if path.is_symlink():
        return False
    if path.is_dir():
        return (path / MARKER).is_file() or (path / _SCRATCH_OWNER).is_file()
    return path.is_file()


def _sweep_partials(target: Path) -> None:
    """Remove what killed writers of this target left (no live writer exists: we hold the lock)."""
    for stale in target.parent.glob(f".{target.name}{PARTIAL}*"):
        if _is_our_partial(stale, target):
            _remove(stale)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


# -- committing ----------------------------------------------------------------------------------------------
def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):   # some file systems cannot fsync a directory
        _fsync_file(path)


@contextlib.contextmanager
def _disk_errors(target: Path) -> Iterator[None]:
    """A full disk or a failing device while writing becomes one line saying nothing was replaced."""
    try:
        yield
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS):
            raise
        reason = "the disk is full" if e.errno in (errno.ENOSPC, errno.EDQUOT) else (e.strerror or str(e))
        raise OutputError(f"cannot write {target}: {reason}; nothing was replaced") from None


def _commit_file(tmp: Path, target: Path, overwrite: bool) -> None:
    if overwrite:
        _check_replaceable(target, "file")      # whatever appeared meanwhile is checked again
        os.replace(tmp, target)
        return
    try:  # a hard link never replaces an existing file, so a file that appeared meanwhile is kept
        os.link(tmp, target)
    except FileExistsError:
        raise OutputError(f"{target} appeared while it was being written: kept it, nothing replaced") from None
    except OSError:  # file systems without hard links
        if target.exists():
            raise OutputError(f"{target} appeared while it was being written: kept it, nothing replaced") from None
        os.replace(tmp, target)
        return
    tmp.unlink()


@contextlib.contextmanager
def staged_file(path: PathLike, *, inputs: Iterable[PathLike | None] = (), overwrite: bool = False,
                suffix: str | None = None, verify: Verify | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on a clean exit flush, verify and move it into place."""
    inputs = tuple(inputs)
    target = claim_output(path, kind="file", inputs=inputs, overwrite=overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    with _writer_lock(target):
        claim_output(target, kind="file", inputs=inputs, overwrite=overwrite)   # a writer may have just finished
        _sweep_partials(target)
        fd, name = tempfile.mkstemp(prefix=f".{target.name}{PARTIAL}", suffix=target.suffix if suffix is None
                                    else suffix, dir=target.parent)
        os.close(fd)
        tmp = Path(name)
        try:
            with _disk_errors(target):
                yield tmp
                _fsync_file(tmp)
            if verify is not None:
                verify(tmp)
            os.chmod(tmp, 0o666 & ~_UMASK)
            _commit_file(tmp, target, overwrite)
            _fsync_dir(target.parent)
        finally:
            _remove(tmp)


@contextlib.contextmanager
def staged_folder(path: PathLike, *, inputs: Iterable[PathLike | None] = (), overwrite: bool = False,
                  verify: Verify | None = None) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on a clean exit flush, verify and move it into place.

    An existing empty folder is replaced; with ``overwrite`` an existing folder with files is replaced as a whole,
    and only after the new one is complete.
    """
    inputs = tuple(inputs)
    target = claim_output(path, kind="folder", inputs=inputs, overwrite=overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    with _writer_lock(target):
        claim_output(target, kind="folder", inputs=inputs, overwrite=overwrite)
        _sweep_partials(target)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}{PARTIAL}", dir=target.parent))
        try:
            (tmp / MARKER).touch()       # a SIGKILL leaves it: the next writer knows the folder is ours
            with _disk_errors(target):
                yield tmp
                (tmp / MARKER).unlink(missing_ok=True)
                for f in tmp.rglob("*"):
                    if f.is_file():
                        _fsync_file(f)
            if verify is not None:
                verify(tmp)
            _apply_folder_mode(tmp)
            _commit_folder(tmp, target, overwrite)
            _fsync_dir(target.parent)
        finally:
            _remove(tmp)


def _apply_folder_mode(folder: Path) -> None:
    os.chmod(folder, 0o777 & ~_UMASK)
    for f in folder.rglob("*"):
        mode = 0o777 if f.is_dir() else 0o666
        if f.is_file() and f.stat().st_mode & stat.S_IXUSR:
            mode = 0o777
        os.chmod(f, mode & ~_UMASK)


def _commit_folder(tmp: Path, target: Path, overwrite: bool) -> None:
    if target.exists():
        _check_replaceable(target, "folder" if overwrite else "")
        if any(target.iterdir()):
            if not overwrite:
                raise OutputError(f"{target} received files while it was being written: kept them, nothing "
                                  f"replaced")
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.replaced-", dir=target.parent))
            os.rename(target, old / target.name)
            os.rename(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
            return
        target.rmdir()
    os.rename(tmp, target)


# -- small helpers ---------------------------------------------------------------------------------------------
def write_bytes(path: PathLike, data: bytes, **kwargs) -> Path:
    """Write ``data`` to ``path`` under the rule (keyword arguments as ``staged_file``)."""
    with staged_file(path, **kwargs) as tmp:
        tmp.write_bytes(data)
    return _resolved(path)


def write_text(path: PathLike, text: str, **kwargs) -> Path:
    """Write UTF-8 ``text`` to ``path`` under the rule (keyword arguments as ``staged_file``)."""
    return write_bytes(path, text.encode("utf-8"), **kwargs)


def append_text(path: PathLike, text: str) -> None:
    """Append to a log the tool owns (a run's ``train.log``): the one kind of file written in place.

    Callers make sure the file is theirs (a run folder refuses to start where its log name is taken).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "a", encoding="utf-8") as fh:
        fh.write(text)
