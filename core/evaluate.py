"""Dataset evaluation: super-resolve each LR clip and score it against its GT, the BasicSR way."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from .data.degrade import mod_crop
from .errors import ClipError
from .infer import super_resolve
from .io.frames import find_clips, read_clip
from .metrics import ClipScore, MeanScore, clip_metrics, mean_over_clips
from .models.basicvsr import BasicVSR


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
                     progress: Callable[[int, int], None] | None = None) -> EvalReport:
    """Mean over frames of each clip, then mean over clips, as VSR papers report."""
    pairs = paired_clips(lr_root, gt_root)
    scores = []
    for i, (lr_path, gt_path) in enumerate(pairs):
        lr, gt = read_clip(lr_path, max_frames), read_clip(gt_path, max_frames)
        if len(lr.frames) != len(gt.frames):
            raise ClipError(f"clip {lr.name}: {len(lr.frames)} LR frames but {len(gt.frames)} GT frames")
        step = (lambda done, total, i=i: progress(i * total + done, len(pairs) * total)) if progress else None
        sr = super_resolve(model, lr.frames, device, progress=step).frames
        gt_frames = [mod_crop(f, 4) for f in gt.frames]
        if sr.shape[1:3] != gt_frames[0].shape[:2]:
            raise ClipError(f"clip {lr.name}: SR frames are {sr.shape[2]}x{sr.shape[1]} but GT frames are "
                            f"{gt_frames[0].shape[1]}x{gt_frames[0].shape[0]} (is the LR a x4 downscale?)")
        scores.append(clip_metrics(sr, gt_frames, crop_border=crop_border, y=y, name=lr.name))
    return EvalReport(scores, mean_over_clips(scores))
