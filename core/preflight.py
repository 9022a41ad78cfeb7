"""Checks of a command's inputs that need no network, run before any inference starts.

Why: a clip of one frame, a crop wider than the frames or LR/GT clips of unrelated sizes used to fail with a
traceback or only after minutes of inference. These checks read at most the first two frames of each clip.
"""
from __future__ import annotations

from pathlib import Path

from .data.degrade import mod_crop
from .errors import ClipError, UserError
from .evaluate import paired_clips
from .io.frames import list_frames, read_clip
from .io.source import open_source

MIN_FRAMES = 2      # BasicVSR propagates features between neighbouring frames
SSIM_MIN_SIDE = 10  # core.metrics.ssim's 11x11 Gaussian window needs more pixels than this per side


def check_clip_length(n_frames: int | None, name: str) -> None:
    """Refuse a clip too short for BasicVSR (``None``: length unknown until read, checked later)."""
    if n_frames is not None and n_frames < MIN_FRAMES:
        raise ClipError(f"clip {name} has {n_frames} frame{'s' if n_frames != 1 else ''}; BasicVSR needs at least "
                        f"{MIN_FRAMES} (it propagates between neighbouring frames)")


def check_crop(crop_border: int, frame_hw: tuple[int, int], name: str) -> None:
    """Refuse a border crop that leaves no pixel of a ``frame_hw`` frame to measure."""
    h, w = frame_hw
    if crop_border < 0:
        raise UserError(f"--crop must be 0 or more pixels, got {crop_border}")
    if 2 * crop_border >= min(h, w):
        raise UserError(f"--crop {crop_border} leaves no pixels of clip {name}'s {h}x{w} (height x width) frames "
                        f"(the largest crop is {(min(h, w) - 1) // 2})")
    left = (h - 2 * crop_border, w - 2 * crop_border)
    if min(left) <= SSIM_MIN_SIDE:      # found here, before inference, rather than by the metric after it
        raise UserError(f"clip {name}: SSIM needs more than {SSIM_MIN_SIDE}x{SSIM_MIN_SIDE} pixels, and its "
                        f"{h}x{w} (height x width) GT frames leave {left[0]}x{left[1]} after --crop {crop_border}")


def check_eval_inputs(lr_root: str | Path, gt_root: str | Path, crop_border: int,
                      max_frames: int | None = None) -> list[tuple[str, tuple[int, int]]]:
    """Every LR/GT pair: at least two frames, as many LR as GT frames (folders), LR x4 matching GT, a crop
    that leaves pixels. Returns each clip's name and LR frame size (h, w)."""
    sizes: list[tuple[str, tuple[int, int]]] = []
    for lr_path, gt_path in paired_clips(lr_root, gt_root):
        if lr_path.is_dir() and gt_path.is_dir():      # counted from names; a video's count needs decoding
            n_lr, n_gt = (len(list_frames(p)) if max_frames is None else min(len(list_frames(p)), max_frames)
                          for p in (lr_path, gt_path))
            if n_lr != n_gt:
                raise ClipError(f"clip {lr_path.name}: {n_lr} LR frames but {n_gt} GT frames")
        lr = read_clip(lr_path, max_frames=MIN_FRAMES if max_frames is None else min(MIN_FRAMES, max_frames))
        check_clip_length(len(lr.frames), lr.name)
        gt = read_clip(gt_path, max_frames=1)
        h, w = mod_crop(gt.frames[0], 4).shape[:2]
        lh, lw = lr.frames.shape[1:3]
        if (4 * lh, 4 * lw) != (h, w):
            raise ClipError(f"clip {lr.name}: LR frames are {lh}x{lw} but GT frames are {h}x{w} (height x width); "
                            f"the LR must be a x4 downscale of the GT")
        check_crop(crop_border, (h, w), lr.name)
        sizes.append((lr.name, (int(lh), int(lw))))
    return sizes


def check_scored_frames(sr_root: str | Path, gt_root: str | Path, crop_border: int) -> None:
    """SR frames already made (``eval --sr``): a crop that leaves pixels of every GT clip, from its header."""
    for _, gt_path in paired_clips(sr_root, gt_root):
        gt = open_source(gt_path, max_frames=1)
        check_crop(crop_border, tuple(gt.size), gt.name)
