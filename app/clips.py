"""Which frames are LR input and which are ground truth, for whatever the user picked.

A folder holding ``GT/`` and an LR sibling (``BIx4``, ``BDx4``, ``LR``, ``LRx4``) is a pair, as in Vid4 or the
demo clip; any other frames folder or video is LR input without GT, unless the user says it is GT, in which
case the LR is made with the project's own BI degradation (MATLAB bicubic ×1/4). Any frames folder (or video) can
also be named as the GT of any LR clip (``gt=``): the frames must match in number and be 4× the LR size.

Frames are read one at a time into disk-backed stores (``FrameStore``): a long clip and its ground truth never
sit in memory, and any frame can still be shown at once.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from core.data.degrade import bi_degrade
from core.errors import ClipError
from core.io.frames import list_frames, read_clip
from core.io.image_file import read_frame
from core.io.missing import why_missing
from core.data.calib import check_frames

from .frame_store import FrameStore

LR_FOLDERS = ("BIx4", "BDx4", "LRx4", "LR", "lr")
GT_FOLDERS = ("GT", "gt", "HR")


@dataclass
class ClipPair:
    """LR frames to super-resolve and, when known, the ground truth they came from (4× larger)."""

    name: str
    lr: FrameStore                 # T frames (h, w, 3) uint8
    gt: FrameStore | None          # T frames (4h, 4w, 3) uint8
    source: Path
    degradation: str               # 'given' | 'BI (made here)' | 'none'
    gt_source: Path | None = None  # a GT folder the user named beside the LR clip (else GT is found in ``source``)

    @property
    def lr_size(self) -> tuple[int, int]:
        h, w, _ = self.lr.frame_shape
        return int(h), int(w)

    def __len__(self) -> int:
        return len(self.lr)


def _subfolder(root: Path, names: tuple[str, ...]) -> Path | None:
    for name in names:
        if (root / name).is_dir():
            return root / name
    return None


def _frames(path: Path, max_frames: int | None) -> Iterator[np.ndarray]:
    """The frames of a folder (read one by one) or a video, in order."""
    if path.is_dir():
        files = list_frames(path)
        if not files:
            read_clip(path)                    # raises the reader's one-line ClipError for an empty folder
        first: tuple[int, ...] | None = None
        for f in files[:max_frames]:
            img, _ = read_frame(f)
            if first is not None and img.shape != first:
                raise ClipError(f"frame {f.name} in {path} is {img.shape[0]}×{img.shape[1]} (H×W) but the first "
                                f"frame is {first[0]}×{first[1]}: all frames must match")
            first = img.shape
            yield img
        return
    yield from read_clip(path, max_frames).frames    # videos (and the reader's errors for anything else)


def _store(frames: Iterator[np.ndarray], path: Path) -> FrameStore:
    store = FrameStore(frames)
    if len(store) < 2:
        raise ClipError(f"{path}: {len(store)} frame(s); BasicVSR needs a clip of at least 2 frames")
    return store


def load_clip_pair(path: Path, treat_as_gt: bool = False, max_frames: int | None = None,
                   gt: Path | None = None) -> ClipPair:
    """Read ``path`` as described in the module docstring; raises ``ClipError`` with a one-line reason."""
    path = Path(path)
    for p in (path, gt):
        missing = None if p is None else why_missing(p, "file or folder")
        if missing is not None:
            raise ClipError(f"clip not found: {p} ({missing})")
    if gt is not None:
        lr = load_clip_pair(path, max_frames=max_frames).lr
        truth = _store(_frames(Path(gt), max_frames), Path(gt))
        _check_pair(lr, truth, path)
        return ClipPair(path.name if path.is_dir() else path.stem, lr, truth, path, "given", Path(gt))
    gt_dir, lr_dir = (_subfolder(path, GT_FOLDERS), _subfolder(path, LR_FOLDERS)) if path.is_dir() else (None, None)
    if lr_dir is not None:
        lr = _store(_frames(lr_dir, max_frames), lr_dir)
        gt = _store(_frames(gt_dir, max_frames), gt_dir) if gt_dir is not None else None
        if gt is not None:
            _check_pair(lr, gt, path)
        return ClipPair(path.name, lr, gt, path, "given")
    name = path.name if path.is_dir() else path.stem
    if treat_as_gt:
        gt = _store((_mod4(f) for f in _frames(path, max_frames)), path)
        return ClipPair(name, FrameStore(bi_degrade(f) for f in gt), gt, path, "BI (made here)")
    return ClipPair(name, _store(_frames(path, max_frames), path), None, path, "none")


def _mod4(frame: np.ndarray) -> np.ndarray:
    h, w, _ = frame.shape
    return frame[: h - h % 4, : w - w % 4]


def _check_pair(lr: FrameStore, gt: FrameStore, root: Path) -> None:
    if len(gt) != len(lr):
        raise ClipError(f"{root}: {len(lr)} LR frames but {len(gt)} GT frames: GT must have a frame for each")
    h, w, _ = lr.frame_shape
    gh, gw, _ = gt.frame_shape
    if (gh, gw) != (4 * h, 4 * w):
        raise ClipError(f"{root}: GT frames are {gh}×{gw} (H×W), expected 4× the LR {h}×{w} = {4 * h}×{4 * w}")


def calibration_frames(clip: ClipPair, max_frames: int) -> np.ndarray:
    """The clip's first ``max_frames`` LR frames, uint8 (T, h, w, 3), checked (``CalibrationError`` in one line)."""
    n = min(len(clip.lr), max_frames)
    return check_frames(np.stack([clip.lr[i] for i in range(n)]), f"clip {clip.name}")
