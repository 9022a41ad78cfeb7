"""The clip a study measures on, and the one way it scores a network on it (PSNR against GT or the dense output)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..data.degrade import mod_crop
from ..errors import ClipError
from ..events import RunControl
from ..infer import super_resolve
from ..io.frames import read_clip
from ..metrics import psnr
from ..models.basicvsr import BasicVSR
from .results import ClipInfo, StudyError

MAX_STUDY_FRAMES = 10_000
MIN_CROP_SIDE = 8


@dataclass
class StudyClip:
    """LR frames, and the ground truth when known (4× larger, mod-4 cropped)."""

    name: str
    lr: np.ndarray                     # (T, h, w, 3) uint8
    gt: np.ndarray | None              # (T, 4h, 4w, 3) uint8
    notes: tuple[str, ...] = ()        # how the clip was cut down (a centre crop), recorded in the result

    def info(self, y: bool = True) -> ClipInfo:
        return ClipInfo(self.name, len(self.lr), (int(self.lr.shape[1]), int(self.lr.shape[2])),
                        "ground truth" if self.gt is not None else "dense output", "Y" if y else "RGB")


def load_study_clip(lr: str | Path, gt: str | Path | None = None, max_frames: int | None = None,
                    crop: tuple[int, int] | None = None) -> StudyClip:
    """Read the LR clip (and GT); a ``ClipError``/``StudyError`` in one line when they do not fit together.

    ``max_frames``: the first N frames only. ``crop`` (h, w): a centre crop of the LR frames (the GT cropped to
    match); a side larger than the clip's keeps the whole side. Both make a study on a CPU minutes, not hours.
    """
    if max_frames is not None and not 2 <= max_frames <= MAX_STUDY_FRAMES:
        raise StudyError(f"max frames must be between 2 and {MAX_STUDY_FRAMES}, got {max_frames}")
    if crop is not None and not all(MIN_CROP_SIDE <= int(s) for s in crop):
        raise StudyError(f"a study crop must be at least {MIN_CROP_SIDE}x{MIN_CROP_SIDE} LR pixels (HxW), "
                         f"got {crop[0]}x{crop[1]}")
    lr_clip = read_clip(lr, max_frames)
    if len(lr_clip) < 2:
        raise StudyError(f"{lr}: a study needs a clip of at least 2 frames (BasicVSR propagates between frames)")
    name = _clip_name(Path(lr))
    lr_frames, box, notes = _centre_crop(lr_clip.frames, crop)
    if gt is None:
        return StudyClip(name, lr_frames, None, notes)
    gt_clip = read_clip(gt, max_frames)
    if len(gt_clip) != len(lr_clip):
        raise ClipError(f"{gt}: {len(gt_clip)} GT frames but {len(lr_clip)} LR frames in {lr}")
    gt_frames = np.stack([mod_crop(f, 4) for f in gt_clip.frames])
    h, w = lr_clip.frames.shape[1:3]
    if gt_frames.shape[1:3] != (4 * h, 4 * w):
        raise ClipError(f"{gt}: GT frames are {gt_frames.shape[1]}x{gt_frames.shape[2]}, expected 4x the LR "
                        f"{h}x{w} = {4 * h}x{4 * w} (HxW)")
    top, left, ch, cw = box
    gt_frames = np.ascontiguousarray(gt_frames[:, 4 * top:4 * (top + ch), 4 * left:4 * (left + cw)])
    return StudyClip(name, lr_frames, gt_frames, notes)


def _centre_crop(frames: np.ndarray, crop: tuple[int, int] | None):
    """The centre ``crop`` of (T, h, w, 3) frames, its box (top, left, h, w) and a note when it cut anything."""
    h, w = frames.shape[1:3]
    ch, cw = (h, w) if crop is None else (min(int(crop[0]), h), min(int(crop[1]), w))
    top, left = (h - ch) // 2, (w - cw) // 2
    if (ch, cw) == (h, w):
        return frames, (0, 0, h, w), ()
    note = f"LR centre crop {ch}x{cw} of {h}x{w} (HxW)"
    return np.ascontiguousarray(frames[:, top:top + ch, left:left + cw]), (top, left, ch, cw), (note,)


def _clip_name(lr: Path) -> str:
    """'calendar' for calendar/BIx4 (the LR folder of a pair is named after its degradation, not the clip)."""
    if lr.is_dir() and lr.name.lower() in ("bix4", "bdx4", "lrx4", "lr") and lr.resolve().parent.name:
        return lr.resolve().parent.name
    return lr.stem if lr.is_file() else lr.name


@dataclass(frozen=True)
class Measurement:
    psnr: float                        # mean over frames, against the reference (inf when identical)
    ms_per_frame: float
    frames: np.ndarray                 # the network's output (kept for the dense model: it is the reference)


class Scorer:
    """Runs networks over the clip and scores their output against one fixed reference.

    With GT the reference is the GT; without it, the dense network's own output (set once by ``set_reference``),
    so a study on any clip still ranks what pruning changes. Each run polls ``control`` through the network's
    per-step progress callback, so Cancel stops within one frame.
    """

    def __init__(self, clip: StudyClip, device: torch.device, y: bool = True,
                 control: RunControl | None = None) -> None:
        self.clip, self.device, self.y, self.control = clip, device, y, control
        self.reference = clip.gt

    def set_reference(self, frames: np.ndarray) -> None:
        if self.clip.gt is None:
            self.reference = frames

    def run(self, model: BasicVSR, progress: Callable[[int, int], None] | None = None) -> Measurement:
        def step(done: int, total: int) -> None:
            if self.control is not None:
                self.control.checkpoint()
            if progress is not None:
                progress(done, total)

        out = super_resolve(model, self.clip.lr, self.device, progress=step)
        score = self.score(out.frames) if self.reference is not None else math.inf
        return Measurement(score, 1000.0 * out.seconds_per_frame, out.frames)

    def score(self, frames: np.ndarray) -> float:
        """GT: mean over frames of each frame's PSNR (as VSR tables). Dense output: one PSNR of the whole clip,
        so a frame that happens to be unchanged (inf dB) cannot make the mean infinite."""
        ref = self.reference
        if self.clip.gt is None:
            return psnr(frames.reshape(-1, *frames.shape[2:]), ref.reshape(-1, *ref.shape[2:]), 0, self.y)
        return float(np.mean([psnr(a, b, 0, self.y) for a, b in zip(frames, ref)]))


@torch.no_grad()
def warm_up(model: BasicVSR, clip: StudyClip, device: torch.device) -> None:
    """One short run first: the first call of a network pays oneDNN's kernel set-up, which is not its speed."""
    super_resolve(model, clip.lr[:2], device)
