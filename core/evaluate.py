"""Dataset evaluation: super-resolve each LR clip and score it against its GT, the BasicSR way."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import torch

from .data.degrade import mod_crop
from .errors import ClipError
from .io.frames import find_clips
from .io.source import FrameSource, open_source
from .metrics import ClipScore, MeanScore, mean_over_clips, psnr, ssim
from .models.basicvsr import BasicVSR
from .stream import stream_frames


@dataclass(frozen=True)
class EvalReport:
    clips: list[ClipScore]
    mean: MeanScore


def paired_clips(lr_root: str | Path, gt_root: str | Path) -> list[tuple[Path, Path]]:
    """Match LR and GT clips by their path relative to each root (one clip, or a tree of clips)."""
    lr_root, gt_root = Path(lr_root), Path(gt_root)
    lr, gt = find_clips(lr_root), find_clips(gt_root)
    if len(lr) == 1 and len(gt) == 1 and lr[0] == lr_root and gt[0] == gt_root:
        return [(lr[0], gt[0])]
    gt_by_name = {p.relative_to(gt_root): p for p in gt}
    pairs = []
    for p in lr:
        rel = p.relative_to(lr_root)
        if rel not in gt_by_name:
            raise ClipError(f"LR clip {rel} has no ground-truth clip under {gt_root}")
        pairs.append((p, gt_by_name[rel]))
    return pairs


def evaluate_dataset(model: BasicVSR, lr_root: str | Path, gt_root: str | Path,
                     device: torch.device | str = "cpu", y: bool = True, crop_border: int = 0,
                     max_frames: int | None = None,
                     progress: Callable[[int, int], None] | None = None,
                     scratch: str | Path | None = None) -> EvalReport:
    """Mean over frames of each clip, then mean over clips, as VSR papers report.

    Each clip streams (``core.stream``): every SR frame is scored against its GT frame, read alongside, the
    moment it exists, so memory stays flat however long the clips are. ``scratch``: where a long clip's
    backward states go (default: ``core.stream.scratch.default_scratch_parent``).
    """
    pairs = paired_clips(lr_root, gt_root)
    scores = []
    for i, (lr_path, gt_path) in enumerate(pairs):
        step = (lambda done, total, i=i: progress(i * total + done, len(pairs) * total)) if progress else None
        scores.append(_score_clip(model, open_source(lr_path, max_frames), open_source(gt_path, max_frames),
                                  device, y, crop_border, step, scratch))
    return EvalReport(scores, mean_over_clips(scores))


def score_frames(sr_root: str | Path, gt_root: str | Path, y: bool = True, crop_border: int = 0,
                 max_frames: int | None = None, progress: Callable[[int, int], None] | None = None) -> EvalReport:
    """SR frames already made (by ``sr`` or any other tool: frames in name order, any naming, or a video) scored
    against their GT as ``evaluate_dataset`` scores a network's, clip by clip (matched like LR and GT clips)."""
    pairs = paired_clips(sr_root, gt_root)
    scores = []
    for i, (sr_path, gt_path) in enumerate(pairs):
        sr, gt = open_source(sr_path, max_frames), open_source(gt_path, max_frames)
        if sr.count is not None and gt.count is not None and sr.count != gt.count:
            raise ClipError(f"clip {sr.name}: {sr.count} SR frames but {gt.count} GT frames")
        total = sr.count or 0
        step = (lambda done, i=i: progress(i * total + done, len(pairs) * total)) if progress and total else None
        scores.append(_score(sr.name, _counted(sr, step), gt, crop_border, y, "SR"))
    return EvalReport(scores, mean_over_clips(scores))


def _counted(frames: Iterable[np.ndarray], step: Callable[[int], None] | None) -> Iterator[np.ndarray]:
    for n, frame in enumerate(frames, 1):
        yield frame
        if step is not None:
            step(n)


def _score_clip(model: BasicVSR, lr: FrameSource, gt: FrameSource, device: torch.device | str, y: bool,
                crop_border: int, progress: Callable[[int, int], None] | None,
                scratch: str | Path | None = None) -> ClipScore:
    if lr.count is not None and gt.count is not None and lr.count != gt.count:
        raise ClipError(f"clip {lr.name}: {lr.count} LR frames but {gt.count} GT frames")
    sr = stream_frames(model, lr, lr.count, device=device, progress=progress, scratch=scratch)
    return _score(lr.name, sr, gt, crop_border, y, "LR")


def _score(name: str, sr_frames: Iterable[np.ndarray], gt: FrameSource, crop_border: int, y: bool,
           what: str) -> ClipScore:
    """Each SR frame against its GT frame (read alongside: flat memory), ``what`` naming the clip compared."""
    p, s = [], []
    gt_frames = iter(gt)
    for n, sr in enumerate(sr_frames):
        ref = next(gt_frames, None)
        if ref is None:
            raise ClipError(f"clip {name}: the GT ends after {n} frames, the {what} clip has more")
        ref = mod_crop(ref, 4)
        if sr.shape != ref.shape:
            raise ClipError(f"clip {name}: SR frames are {sr.shape[0]}x{sr.shape[1]} but GT frames are "
                            f"{ref.shape[0]}x{ref.shape[1]} (HxW; is the LR a x4 downscale?)")
        p.append(psnr(sr, ref, crop_border, y))
        s.append(ssim(sr, ref, crop_border, y))
    if next(gt_frames, None) is not None:
        raise ClipError(f"clip {name}: the GT has more frames than the {len(p)} of the {what} clip")
    return ClipScore(name=name, psnr=p, ssim=s)
