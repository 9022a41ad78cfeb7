"""HDF5 files written under the output rule (``core.io.output``) so that a disk that refuses a write is one line.

Why not ``h5py.File(tmp, "w")``: when the disk fills (or fails) under HDF5, HDF5 fails the close of every
object that still holds unwritten data, and h5py is left with object ids it can neither use nor close. Freeing
them later — when the exception is dropped, or at interpreter exit — prints ``Exception ignored`` tracebacks and
kills the process with SIGSEGV or SIGBUS (h5py issues #914 and #2160): after our one-line error, with exit 135 or
139 instead of 2. Measured on a full tmpfs with h5py 3.16 / HDF5 2.0 (``train`` with ``data.cache``, and the
``export --format h5`` report); a Ctrl-C raised inside HDF5's close did the same (a SystemError, then SIGSEGV).

So HDF5 writes here through a file object that never fails towards HDF5 (h5py's ``fileobj`` driver): it records
the first refused write (or a Ctrl-C that lands inside HDF5's call), keeps from then on what HDF5 writes in memory
so that HDF5 reads back what it wrote and closes cleanly, and the recorded error is raised once HDF5 has let go —
inside ``staged_file``, whose one mapping turns it into the one-line ``OutputError`` naming the disk and removes
the partial file. A writer of many bytes calls ``check()`` after each piece, so little is held in memory.
"""
from __future__ import annotations

import contextlib
import errno
import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping

from .output import PathLike, staged_file

if TYPE_CHECKING:  # h5py is imported where it is used: the GUI and most commands never need it
    import h5py

__all__ = ["HDF5Output", "staged_hdf5"]


def _never_raises(method: Callable[..., Any]) -> Callable[..., Any]:
    """For the methods HDF5 calls: an exception out of one (the disk's refusal, a Ctrl-C that lands in it) would
    fail HDF5's operation and, during a close, leave h5py with ids it cannot close (a segfault later). It is
    recorded instead, and the call done again without the disk (nothing in it can fail then)."""
    @functools.wraps(method)
    def call(self: "_GuardedFile", *args: Any) -> Any:
        try:
            return method(self, *args)
        except BaseException as e:
            self._fail(e)
            return method(self, *args)
    return call


class _GuardedFile:
    """The file object HDF5 writes through: never raises to HDF5, remembers the first failure instead.

    Before a failure reads and writes go straight to the file (``pread``/``pwrite``, as HDF5's own driver does);
    after it, writes are held in memory and laid over what reads return, so HDF5 sees a consistent file.
    """

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_RDWR)
        self._pos = 0
        self._size = 0                                 # the length HDF5 sees, once writes are held
        self._held: list[tuple[int, bytes]] = []       # (offset, bytes) written since the failure, in order
        self.failure: BaseException | None = None      # the refused write's OSError, or a deferred Ctrl-C

    # -- what h5py's fileobj driver calls: seek, tell, read, write, truncate, flush ---------------------------
    @_never_raises
    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos}.get(whence)
        self._pos = offset + (self._end() if base is None else base)
        return self._pos

    def tell(self) -> int:
        return self._pos

    @_never_raises
    def read(self, size: int) -> bytes:
        """``size`` bytes (zeros past the end, as HDF5's own driver reads), the held writes laid over them."""
        buf = bytearray(size)
        done = 0
        with contextlib.suppress(*(() if self.failure is None else (OSError,))):
            while done < size:
                chunk = os.pread(self._fd, size - done, self._pos + done)
                if not chunk:
                    break
                buf[done:done + len(chunk)] = chunk
                done += len(chunk)
        for start, held in self._held:                 # in the order they came: a later write wins
            lo, hi = max(start, self._pos), min(start + len(held), self._pos + size)
            if lo < hi:
                buf[lo - self._pos:hi - self._pos] = held[lo - start:hi - start]
        self._pos += size
        return bytes(buf)

    @_never_raises
    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        if self.failure is None:
            done = 0
            while done < len(view):
                n = os.pwrite(self._fd, view[done:], self._pos + done)
                if n <= 0:             # a disk that takes nothing without saying why: treat it as full
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                done += n
        else:
            self._held.append((self._pos, bytes(view)))
            self._size = max(self._size, self._pos + len(view))
        self._pos += len(view)
        return len(view)

    @_never_raises
    def truncate(self, size: int) -> int:
        if self.failure is None:
            os.ftruncate(self._fd, size)
        else:
            self._size = size
        return size

    def flush(self) -> None:
        """Nothing to do: ``staged_file`` flushes the finished file to the disk before it moves it into place."""

    # -- ours ---------------------------------------------------------------------------------------------
    def check(self) -> None:
        """Raise what made the writes stop (the disk's OSError, or the deferred Ctrl-C), if anything did."""
        if self.failure is not None:
            raise self.failure

    def close(self) -> None:
        self._held.clear()
        with contextlib.suppress(OSError):
            os.close(self._fd)

    def _fail(self, error: BaseException) -> None:
        if self.failure is not None:
            return
        try:
            self._size = os.fstat(self._fd).st_size
        except OSError:
            self._size = self._pos
        self.failure = error.with_traceback(None)

    def _end(self) -> int:
        return os.fstat(self._fd).st_size if self.failure is None else self._size


@dataclass
class HDF5Output:
    """The open HDF5 file being written, and ``check()``: raise at once when the disk has refused a write."""

    file: "h5py.File"
    _guard: _GuardedFile

    def check(self) -> None:
        """Call after each large write (a frame): the disk's refusal surfaces here, before more is held in memory."""
        self._guard.check()


@contextlib.contextmanager
def staged_hdf5(path: PathLike, *, file_options: Mapping[str, Any] | None = None,
                **staged: Any) -> Iterator[HDF5Output]:
    """Write a new HDF5 file at ``path`` under the output rule (other keyword arguments as ``staged_file``).

    A disk that refuses a write (full, no inodes, over quota, read-only, failing) ends in one ``OutputError``
    naming the disk, with no partial file left and the previous file at ``path`` untouched. ``file_options`` go
    to ``h5py.File`` (e.g. ``rdcc_nbytes=0``: no chunk cache, so each chunk reaches the disk when it is written).
    """
    import h5py

    with staged_file(path, **staged) as tmp:
        tmp_file = _GuardedFile(tmp)
        try:
            with h5py.File(tmp_file, "w", **dict(file_options or {})) as f:
                yield HDF5Output(f, tmp_file)
        except Exception:
            tmp_file.check()           # a refused write explains whatever HDF5 or the caller made of it
            raise
        finally:
            tmp_file.close()
        tmp_file.check()
