"""Frames kept on disk, read back one at a time: the clip and every SR series of a comparison.

A 300-frame clip with its ground truth and three 4× series is gigabytes as arrays; here each series is one
unnamed temporary file (deleted by the OS when closed or when the process dies) of raw uint8 frames, on disk
even where the temp folder is a RAM disk (``default_scratch_parent``). A worker
thread appends while the GUI thread reads any frame already written (positional reads and writes, so the
two never share a file offset); memory stays at one frame per reader whatever the clip length.
"""
from __future__ import annotations

import os
import tempfile
import threading
from typing import Iterable, Iterator

import numpy as np

from core.stream.scratch import default_scratch_parent


class FrameStore:
    """An append-only sequence of uint8 (h, w, 3) frames of one size, indexable like an array of frames."""

    def __init__(self, frames: Iterable[np.ndarray] = ()) -> None:
        self._file = tempfile.TemporaryFile(prefix="ssl-vsr-frames-", dir=default_scratch_parent())
        self._fd = self._file.fileno()
        self._frame_shape: tuple[int, int, int] | None = None
        self._count = 0
        self._lock = threading.Lock()
        for frame in frames:
            self.write(frame)

    # -- writing (one writer) ------------------------------------------------------------------------
    def write(self, frame: np.ndarray) -> None:
        """Append one frame (the FrameSink call); all frames must share the first one's size."""
        frame = np.ascontiguousarray(frame, dtype=np.uint8)
        if frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"expected an (h, w, 3) frame, got {frame.shape}")
        if self._frame_shape is None:
            self._frame_shape = frame.shape
        elif frame.shape != self._frame_shape:
            raise ValueError(f"frame {self._count} is {frame.shape[0]}×{frame.shape[1]} (H×W), the store holds "
                             f"{self._frame_shape[0]}×{self._frame_shape[1]} frames")
        data = frame.tobytes()
        offset = self._count * len(data)
        written = 0
        while written < len(data):
            written += os.pwrite(self._fd, data[written:], offset + written)
        with self._lock:
            self._count += 1            # visible to readers only once the bytes are in the file

    # -- reading (any thread) ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._count

    @property
    def frame_shape(self) -> tuple[int, int, int] | None:
        return self._frame_shape

    @property
    def shape(self) -> tuple[int, ...]:
        """(T, h, w, 3) as an array of the frames written so far would have."""
        return (self._count, *(self._frame_shape or (0, 0, 3)))

    def __getitem__(self, index: int) -> np.ndarray:
        n = self._count
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError(f"frame {index} not available ({n} written)")
        frame = np.empty(self._frame_shape, dtype=np.uint8)
        if os.preadv(self._fd, [frame], index * frame.nbytes) != frame.nbytes:
            raise OSError(f"frame {index}: short read from the frame store")
        return frame

    def get(self, index: int) -> np.ndarray | None:
        """Frame ``index`` if it has been written yet, else None (for views that show what exists)."""
        return self[index] if 0 <= index < self._count else None

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(self._count):
            yield self[i]

    @property
    def nbytes(self) -> int:
        """Bytes on disk."""
        return self._count * int(np.prod(self._frame_shape or (0,)))

    def close(self) -> None:
        self._file.close()
