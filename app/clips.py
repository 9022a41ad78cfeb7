"""Which frames are LR input and which are ground truth, for whatever the user picked.

A folder holding ``GT/`` and an LR sibling (``BIx4``, ``BDx4``, ``LR``, ``LRx4``) is a pair, as in Vid4 or the
demo clip; any other frames folder or video is LR input without GT, unless the user says it is GT, in which
case the LR is made with the project's own BI degradation (MATLAB bicubic ×1/4).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.data.degrade import bi_degrade
from core.errors import ClipError
from core.io.frames import Clip, read_clip

LR_FOLDERS = ("BIx4", "BDx4", "LRx4", "LR", "lr")
GT_FOLDERS = ("GT", "gt", "HR")


@dataclass
class ClipPair:
    """LR frames to super-resolve and, when known, the ground truth they came from (4× larger)."""

    name: str
    lr: np.ndarray                 # (T, h, w, 3) uint8
    gt: np.ndarray | None          # (T, 4h, 4w, 3) uint8
    source: Path
    degradation: str               # 'given' | 'BI (made here)' | 'none'

    @property
    def lr_size(self) -> tuple[int, int]:
        return int(self.lr.shape[1]), int(self.lr.shape[2])


def _subfolder(root: Path, names: tuple[str, ...]) -> Path | None:
    for name in names:
        if (root / name).is_dir():
            return root / name
    return None


def load_clip_pair(path: Path, treat_as_gt: bool = False, max_frames: int | None = None) -> ClipPair:
    """Read ``path`` as described in the module docstring; raises ``ClipError`` with a one-line reason."""
    path = Path(path)
    gt_dir, lr_dir = (_subfolder(path, GT_FOLDERS), _subfolder(path, LR_FOLDERS)) if path.is_dir() else (None, None)
    if lr_dir is not None:
        lr = read_clip(lr_dir, max_frames)
        gt = read_clip(gt_dir, max_frames).frames if gt_dir is not None else None
        if gt is not None:
            _check_pair(lr, gt, path)
        return ClipPair(path.name, lr.frames, gt, path, "given")
    clip = read_clip(path, max_frames)
    if treat_as_gt:
        return ClipPair(clip.name, bi_degrade(clip.frames), _mod4(clip.frames), path, "BI (made here)")
    return ClipPair(clip.name, clip.frames, None, path, "none")


def _mod4(frames: np.ndarray) -> np.ndarray:
    t, h, w, _ = frames.shape
    return frames[:, : h - h % 4, : w - w % 4]


def _check_pair(lr: Clip, gt: np.ndarray, root: Path) -> None:
    if len(gt) != len(lr):
        raise ClipError(f"{root}: {len(lr)} LR frames but {len(gt)} GT frames")
    h, w = lr.frames.shape[1:3]
    if gt.shape[1:3] != (4 * h, 4 * w):
        raise ClipError(f"{root}: GT frames are {gt.shape[2]}x{gt.shape[1]}, expected 4× the LR "
                        f"{w}x{h} = {4 * w}x{4 * h}")
