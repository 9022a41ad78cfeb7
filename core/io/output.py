"""The one rule for everything the tool writes: nothing the user owns is ever lost.

- Never over an input of the same command (nor inside or around one), never over an existing file or a folder
  that holds files unless the caller says ``overwrite``.
- Every output is built under a hidden temporary name beside its target (``.<name>.partial-XXXX``) and moved into
  place only when complete, flushed and verified. Ctrl-C, an exception, a full disk or a failed verification
  removes the temporary and leaves the previous target as it was; SIGKILL leaves only a hidden ``.partial``
  that never looks finished (and is swept by the next writer of the same target).
- A folder replaces a folder in one atomic step where the system allows (see ``_commit_folder``): a kill at any
  point leaves the whole old or the whole new folder at its name, and the next writer finishes the swap.
- A full disk (space or inodes), a quota, a read-only or failing disk, a busy mount point: one line naming the
  disk and saying nothing was replaced (``OutputError``), from the lock file to the final swap.
- A second writer of the same target is refused while the first holds it (an advisory lock beside the target).
- Files get the normal permissions of the user's umask (``mkstemp`` alone would leave them 0600).

This module is the only place in the project that opens files for writing; callers get a temporary path to write
to (encoders that pick a format from the extension get one that ends in the target's extension).
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import json
import os
import re
import shutil
import stat
import sys
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
SWAP_RECORD = "swap.json"     # inside a marked partial folder: the journal of one folder swap (_commit_folder)
_SWAP_FORMAT = "ssl-vsr-swap"
_OLD = "replaced"             # where the old folder waits inside the record when the system cannot exchange
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
    try:
        return Path(path).expanduser().resolve(strict=False)
    except (RuntimeError, OSError):     # a symbolic link loop (RuntimeError before Python 3.13, OSError after)
        raise UserError(f"{path}: a link loop (a symbolic link that leads back to itself)") from None


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
def exclusive_lock(lock: Path, busy: Callable[[int | None], Exception], *, guards: Path | None = None
                   ) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the file ``lock`` while the block runs; raise ``busy(pid)`` at once when
    another holder has it (``pid``: the holder's process id as it wrote it in the file, None if unknown).

    Why ``flock`` on a file of its own: the kernel drops the lock when its holder ends, ``kill -9`` and power
    loss included, so a dead holder never blocks anyone; the lock belongs to one open file, so a second
    thread of the same process is refused like a second process. The holder's pid is written into the file
    for the refusal message, and the file is removed on release; a contender that opened the removed file
    retries on the live one. A disk that refuses the lock file is one line (``OutputError``) naming the disk and
    what the lock ``guards`` (the output or folder it protects; the lock file itself when not given).
    """
    if fcntl is None:  # pragma: no cover
        yield
        return
    fd = _take_lock(lock, busy, guards)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            lock.unlink()
        os.close(fd)


def _take_lock(lock: Path, busy: Callable[[int | None], Exception], guards: Path | None) -> int:
    """Open, lock and stamp ``lock``; the open descriptor. A disk that refuses the lock file (full, no inodes,
    read-only, over quota) is one line naming it (``OutputError``), never a traceback."""
    fd, held = -1, False
    try:
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
                    held = True
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
            fd = -1
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return fd
    except OSError as e:
        if held:         # ours (a lock file we could not stamp): removed; another holder's file is left alone
            with contextlib.suppress(OSError):
                lock.unlink()
        if fd >= 0:
            os.close(fd)
        what = f"write {guards}" if guards is not None else f"create the lock file {lock}"
        where = f" (at its lock file {lock.name})" if guards is not None else ""
        raise OutputError(f"cannot {what}: {_disk_reason(lock, e)}{where}; nothing was replaced") from None


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
        f"another process is writing {target} right now: wait for it or choose another output"), guards=target)


def _is_partial_name(name: str, target: Path) -> bool:
    """The exact name ``tempfile`` gives a partial of ``target``."""
    return bool(re.fullmatch(re.escape(f".{target.name}{PARTIAL}") + _RANDOM + r"(\.[A-Za-z0-9]{1,10})?", name))


def _is_our_partial(path: Path, target: Path) -> bool:
    """A killed writer's leftover: the exact name ``tempfile`` gave it and, for a folder, our marker inside.

    An empty folder of that exact name counts too: a kill between ``mkdtemp`` and the marker leaves one, and
    it is removed with ``rmdir``, which cannot remove anything else (see ``_sweep_partials``).
    """
    if not _is_partial_name(path.name, target):
        return False
    if path.is_symlink():
        return False
    if path.is_dir():
        return (path / MARKER).is_file() or (path / _SCRATCH_OWNER).is_file() or not any(path.iterdir())
    return path.is_file()


def _our_partials(target: Path) -> list[Path]:
    prefix = f".{target.name}{PARTIAL}"
    try:
        return [p for p in target.parent.iterdir() if p.name.startswith(prefix) and _is_our_partial(p, target)]
    except FileNotFoundError:
        return []


def _sweep_partials(target: Path) -> None:
    """Finish the folder swaps killed writers of this target left, then remove their partials (no live writer
    exists: we hold the lock). Runs in every writer of the target before it checks what lies there."""
    for record in _our_partials(target):
        if record.is_dir() and (record / SWAP_RECORD).is_file():
            _finish_swap(record, target, forward=True)
    for stale in _our_partials(target):
        if stale.is_dir() and not any(stale.iterdir()):
            with contextlib.suppress(OSError):
                os.rmdir(stale)          # empty: a folder that gained a file since is not removed
        else:
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


DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS, errno.EBUSY})
# what torch.save's C++ writer says when the file system refuses bytes (it loses the errno on the way)
_TORCH_WRITE_FAILED = ("unexpected pos", "PytorchStreamWriter failed", "file write failed")


def _disk_of(path: Path) -> Path:
    """The mount point of the file system that holds ``path`` (or would hold it): the disk a message names."""
    here = Path(os.path.abspath(path))
    while not here.exists() and here != here.parent:
        here = here.parent
    while here != here.parent and not os.path.ismount(here):
        here = here.parent
    return here


def _disk_full(path: Path) -> str | None:
    """Why the file system holding ``path`` takes no more (space or inodes), or None when it still has room."""
    disk = _disk_of(path)
    try:
        vfs = os.statvfs(disk)
    except OSError:
        return None
    if vfs.f_files and vfs.f_favail == 0:
        return f"the disk is full: no free inodes (file entries) left on the file system at {disk}"
    if vfs.f_bavail * vfs.f_frsize < (1 << 20):
        return f"the disk is full: no space left on the file system at {disk}"
    return None


def _disk_reason(path: Path, err: OSError) -> str:
    """What a failed write means for the user, naming the disk (no errno numbers, no traceback)."""
    disk = _disk_of(path)
    if err.errno == errno.ENOSPC:
        return _disk_full(path) or f"the disk is full: no space or no free inodes left on the file system at {disk}"
    if err.errno == errno.EDQUOT:
        return f"the disk is full for you: your quota on the file system at {disk} is used up"
    if err.errno == errno.EROFS:
        return f"the file system at {disk} is read-only"
    if err.errno == errno.EBUSY:
        return f"{path} is busy (a mount point, or in use by the system)"
    if err.errno == errno.EIO:
        return f"an input/output error on the disk at {disk} (a failing or removed device)"
    return err.strerror or str(err)


def _write_failed(path: Path) -> str:
    """A write that failed without an errno (torch.save): a full disk when the disk says so, else the disk."""
    return _disk_full(path) or (f"writing to the file system at {_disk_of(path)} failed (the disk is full, over "
                                f"quota or failing)")


@contextlib.contextmanager
def _disk_errors(target: Path) -> Iterator[None]:
    """A full disk (space, inodes, quota), a read-only, busy or failing device while writing becomes one line
    naming the disk and saying nothing was replaced; so does torch.save's report of a failed write."""
    try:
        yield
    except OSError as e:
        if e.errno not in DISK_ERRNOS:
            raise
        raise OutputError(f"cannot write {target}: {_disk_reason(target, e)}; nothing was replaced") from None
    except RuntimeError as e:
        if not any(text in str(e) for text in _TORCH_WRITE_FAILED):
            raise
        raise OutputError(f"cannot write {target}: {_write_failed(target)}; nothing was replaced") from None


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
    with _disk_errors(target), _writer_lock(target):
        _sweep_partials(target)
        claim_output(target, kind="file", inputs=inputs, overwrite=overwrite)   # a writer may have just finished
        fd, name = tempfile.mkstemp(prefix=f".{target.name}{PARTIAL}", suffix=target.suffix if suffix is None
                                    else suffix, dir=target.parent)
        os.close(fd)
        tmp = Path(name)
        try:
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
    and only after the new one is complete, in one step a kill cannot split (``_commit_folder``). ``verify``
    sees the hidden marker file ``.ssl-vsr-partial`` beside the written files (it goes just before the swap).
    """
    inputs = tuple(inputs)
    target = claim_output(path, kind="folder", inputs=inputs, overwrite=overwrite)
    with _disk_errors(target), _writer_lock(target):
        _sweep_partials(target)           # a killed swap is finished first: what lies at the target is whole
        claim_output(target, kind="folder", inputs=inputs, overwrite=overwrite)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}{PARTIAL}", dir=target.parent))
        try:
            (tmp / MARKER).touch()       # a SIGKILL leaves it: the next writer knows the folder is ours
            yield tmp
            for f in tmp.rglob("*"):
                if f.is_file():
                    _fsync_file(f)
            if verify is not None:
                verify(tmp)
            _apply_folder_mode(tmp)
            _commit_folder(tmp, target, overwrite)
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
    """Move the complete folder ``tmp`` to ``target``, so that a kill at any instant leaves at ``target`` the
    whole old folder or the whole new one, and nothing of ours that the next writer cannot recognise.

    1. A swap record is written first: a partial folder of ours (marker inside) holding ``swap.json``, made
       complete by a rename, that names the staged folder and the (device, inode) of the new and the old folder.
    2. The staged folder loses its marker (the record now claims it), then takes the target's place: over
       nothing or an empty folder by ``rename`` (atomic, and it never replaces a folder holding files); over
       a folder with files by ``renameat2(RENAME_EXCHANGE)`` on Linux (atomic: the old folder ends under
       the staged name), else by two renames through the record (``target`` is absent between them).
    3. The old folder is removed, then the record.
    The next writer of the target (``_sweep_partials``, under its lock) finishes a record a kill left: the
    folder at ``target`` is kept whichever it is; a missing one is completed from the new folder (or, failing
    that, restored from the old); then everything the record names is removed. Things are removed only when
    their inode is the one the record wrote, or when they lie inside our marked record.
    """
    replace = False
    if target.exists():
        _check_replaceable(target, "folder" if overwrite else "")
        if any(target.iterdir()):
            if not overwrite:
                raise OutputError(f"{target} received files while it was being written: kept them, nothing "
                                  f"replaced")
            replace = True
    record = _write_swap_record(tmp, target)
    try:
        (tmp / MARKER).unlink()
        _fsync_dir(tmp)
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
        _fsync_dir(target.parent)
    except BaseException:
        _finish_swap(record, target, forward=False)   # back to the old folder; the caller reports the failure
        raise
    _finish_swap(record, target, forward=True)


def _identity(path: Path) -> list[int] | None:
    """(device, inode) of a real folder at ``path``, None when there is none (a symlink is not one)."""
    try:
        info = os.lstat(path)
    except OSError:
        return None
    return [info.st_dev, info.st_ino] if stat.S_ISDIR(info.st_mode) else None


def _write_swap_record(staged: Path, target: Path) -> Path:
    """A marked partial folder holding the journal of the swap of ``staged`` into ``target`` (see _commit_folder).

    The journal appears whole or not at all (written beside, flushed, renamed): a record without one is a
    plain partial, and then the staged folder still holds its own marker.
    """
    record = Path(tempfile.mkdtemp(prefix=f".{target.name}{PARTIAL}", dir=target.parent))
    try:
        (record / MARKER).touch()
        journal = {"format": _SWAP_FORMAT, "target": target.name, "staged": staged.name,
                   "new": _identity(staged), "old": _identity(target)}
        part = record / f"{SWAP_RECORD}.part"
        part.write_text(json.dumps(journal), encoding="utf-8")
        _fsync_file(part)
        os.rename(part, record / SWAP_RECORD)
        _fsync_dir(record)
    except BaseException:
        _remove(record)
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
    if not isinstance(staged, str) or not _is_partial_name(staged, target):
        return None
    return journal


def _finish_swap(record: Path, target: Path, *, forward: bool) -> None:
    """Bring a swap to an end from its record: ``target`` whole (the new folder if ``forward``, when it is missing;
    else the old one), the other folder and the record removed. Safe to run again after a kill."""
    journal = _read_swap_record(record, target)
    if journal is None:
        return                                 # a plain partial: swept like any other
    staged = target.parent / journal["staged"]
    ours = [i for i in (journal["new"], journal.get("old")) if i is not None]   # what this swap moved; only these

    def moved(path: Path) -> bool:       # the staged name holds a folder this swap moved (new, or old after exchange)
        return _identity(path) in ours

    if not os.path.lexists(target):
        candidates = [staged, record / _OLD] if forward else [record / _OLD, staged]
        for source in candidates:
            if moved(source) if source == staged else _identity(source) is not None:
                os.rename(source, target)
                _fsync_dir(target.parent)
                break
    if moved(staged) and _identity(staged) != _identity(target):
        _remove(staged)
    _remove(record / _OLD)
    (record / SWAP_RECORD).unlink(missing_ok=True)    # the journal goes last but one: the rest is a plain partial
    _remove(record)


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
