"""An HDF5 frame cache: clips stored once as uint8 arrays, one chunk per frame, read back without decoding.

Training VSR on a CPU-bound loader is PNG decoding, not the GPU: a 720p PNG takes ~20 ms to decode, a chunk
read takes a fraction of that. The cache holds one dataset per clip, ``(T, H, W, 3)`` uint8, chunked
``(1, H, W, 3)``, uncompressed by default so a read is a plain copy. A fingerprint of what was cached (clip
names, frame counts, source paths) is stored, so a stale cache is rebuilt rather than silently used.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from .h5write import staged_hdf5

CACHE_FORMAT = "ssl-vsr-frame-cache"
COMPRESSIONS = ("none", "lzf", "gzip")

#: One clip to cache: its key (``"gt/000"``), frame count, frame shape (H, W, 3) and a frame iterator.
CacheItem = tuple[str, int, tuple[int, int, int], Callable[[], Iterator[np.ndarray]]]


def _cache_attrs(path: str | os.PathLike) -> dict | None:
    """The attributes of a cache file of ours at ``path``, or None when it is absent or anything else."""
    import h5py

    p = Path(path)
    if not p.is_file():
        return None
    try:
        with h5py.File(p, "r") as f:
            return dict(f.attrs) if f.attrs.get("format") == CACHE_FORMAT else None
    except OSError:
        return None


def cache_is_current(path: str | os.PathLike, fingerprint: str) -> bool:
    """True when ``path`` is a complete cache built from exactly the clips ``fingerprint`` describes."""
    attrs = _cache_attrs(path)
    return attrs is not None and attrs.get("fingerprint") == fingerprint


def build_cache(path: str | os.PathLike, items: Sequence[CacheItem], fingerprint: str,
                progress: Callable[[int, int], None] | None = None, compression: str = "none") -> Path:
    """Write every item into a new cache file (atomically: a killed build leaves no half cache behind).

    An outdated cache of ours is replaced; any other file at ``path`` is the user's and is refused. A disk that
    fills during the build is one ``OutputError`` naming it (``staged_hdf5``), and the build stops at the frame
    the disk refused.
    """
    if compression not in COMPRESSIONS:
        raise ValueError(f"compression must be one of {', '.join(COMPRESSIONS)}")
    total = sum(n for _, n, _, _ in items)
    done = 0
    # rdcc_nbytes=0: each frame is one whole chunk, written once; HDF5's chunk cache (8 MiB per clip) would only
    # hold it back, and with it the disk's refusal, which ``out.check()`` then meets at the frame that caused it
    with staged_hdf5(path, overwrite=_cache_attrs(path) is not None, file_options={"rdcc_nbytes": 0}) as out:
        f = out.file
        f.attrs["format"] = CACHE_FORMAT
        for key, n, shape, frames in items:
            ds = f.create_dataset(key, shape=(n, *shape), dtype=np.uint8, chunks=(1, *shape),
                                  compression=None if compression == "none" else compression)
            for t, frame in enumerate(frames()):
                ds[t] = frame
                out.check()
                done += 1
                if progress is not None:
                    progress(done, total)
        f.attrs["fingerprint"] = fingerprint  # last: an interrupted build never looks complete
    return Path(path)


class H5Frames:
    """Random access to cached clips; opens the file lazily once per process (safe with forked workers)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._file = None
        self._pid = -1

    def _handle(self):
        import h5py

        if self._file is None or self._pid != os.getpid():
            self._file = h5py.File(self.path, "r")
            self._pid = os.getpid()
        return self._file

    def read(self, key: str, t0: int, t1: int, box: tuple[int, int, int, int] | None = None) -> np.ndarray:
        """Frames ``t0:t1`` of clip ``key``, optionally only the window ``(y, x, h, w)``: (T, h, w, 3) uint8."""
        ds = self._handle()[key]
        if box is None:
            return ds[t0:t1]
        y, x, h, w = box
        return ds[t0:t1, y:y + h, x:x + w]

    def __getstate__(self) -> dict:
        return {"path": self.path, "_file": None, "_pid": -1}
