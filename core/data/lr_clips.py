"""LR clips with no GT at all (a video or a folder of frames the user has), trained on by distillation from a
teacher: found, bounded in memory and checked before training starts."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import ClipError, DatasetError
from ..io.frames import find_clips
from ..io.source import FolderSource, open_source
from .datasets import read_frame_file


@dataclass(frozen=True, eq=False)
class LRClip:
    """One LR clip with no GT: frame files read as needed, or a video decoded once into memory."""

    name: str
    path: Path
    frames: int
    size: tuple[int, int]                        # (h, w)
    files: tuple[Path, ...] | None = None        # a folder of frames
    decoded: tuple[np.ndarray, ...] | None = None   # a video's frames, uint8 (h, w, 3) each

    def read(self, t0: int, t1: int, box: tuple[int, int, int, int]) -> np.ndarray:
        """Frames ``t0:t1``, window (y, x, h, w), uint8 (T, h, w, 3)."""
        y, x, h, w = box
        if self.decoded is not None:
            return np.stack([f[y:y + h, x:x + w] for f in self.decoded[t0:t1]])
        out = []
        for path in self.files[t0:t1]:
            img = read_frame_file(path)
            if img.shape[:2] != self.size:
                raise DatasetError(f"LR frame {path} is {img.shape[0]}x{img.shape[1]} but the clip's first frame is "
                                   f"{self.size[0]}x{self.size[1]} (HxW): all frames of a clip must match")
            out.append(img[y:y + h, x:x + w])
        return np.stack(out)


def load_lr_clips(root: str | os.PathLike | None, cache_limit_mb: int) -> list[LRClip]:
    """The LR clips under ``root`` (a video file, a folder of frames, or a folder of clip folders / videos).

    Frames are read with ``core.io.source.open_source``. A frame folder stays on disk (its frames are read as
    patches need them); a video cannot be read at random, so its frames are decoded once into memory, all videos
    together at most ``cache_limit_mb`` MiB: past that a ``DatasetError`` says so before any training (and before
    more than the limit is held).
    """
    if not root:
        raise DatasetError("no LR clips given: set data.lr_root (a video file, a folder of frames or of clips)")
    root = Path(root)
    try:
        found = find_clips(root)
    except ClipError as e:
        raise DatasetError(str(e)) from None
    budget = cache_limit_mb * 2**20
    clips = []
    for path in found:
        name = path.relative_to(root).as_posix() if path != root else path.name
        try:
            src = open_source(path)
        except ClipError as e:
            raise DatasetError(str(e)) from None
        if isinstance(src, FolderSource):
            clips.append(LRClip(name, path, len(src.files), src.size, files=tuple(src.files)))
            continue
        frames = _decode_within(src, budget, cache_limit_mb)
        budget -= sum(f.nbytes for f in frames)
        clips.append(LRClip(name, path, len(frames), src.size, decoded=tuple(frames)))
    return clips


def _decode_within(src, budget: int, limit_mb: int) -> list[np.ndarray]:
    """Every frame of a video source, refusing (early when its header gives the count) past ``budget`` bytes."""
    h, w = src.size
    frame_bytes = h * w * 3

    others = "" if budget == limit_mb * 2**20 else " with the videos before it"

    def refuse(frames: str) -> DatasetError:
        return DatasetError(f"LR video {src.path}: {frames} of {h}x{w} (HxW) do not fit in data.lr_cache_mb = "
                            f"{limit_mb} MiB{others} (videos are decoded into memory once): raise data.lr_cache_mb, "
                            f"or extract the frames into a folder (read from disk as needed)")

    if src.count and src.count * frame_bytes > budget:
        raise refuse(f"its {src.count} frames ({src.count * frame_bytes / 2**20:.0f} MiB)")
    frames: list[np.ndarray] = []
    try:
        for frame in src:
            if (len(frames) + 1) * frame_bytes > budget:
                raise refuse(f"more than {len(frames)} frames")
            frames.append(frame)
    except ClipError as e:
        raise DatasetError(str(e)) from None
    return frames


def check_lr_clips(clips: Sequence[LRClip], clip_length: int, patch: int) -> None:
    """Every LR clip must hold ``clip_length`` frames and a patch of ``patch`` pixels."""
    if not clips:
        raise DatasetError("no LR clips to train on")
    short = [c for c in clips if c.frames < clip_length]
    if short:
        c = short[0]
        raise DatasetError(f"LR clip {c.name} has {c.frames} frames, fewer than data.clip_length = {clip_length} "
                           f"({len(short)} of {len(clips)} clips are too short)")
    small = [c for c in clips if min(c.size) < patch]
    if small:
        c = small[0]
        raise DatasetError(f"LR clip {c.name}: frames of {c.size[0]}x{c.size[1]} (HxW) are smaller than a patch of "
                           f"{patch}; lower data.patch_size")
