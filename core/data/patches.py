"""What a training stage draws from its clips: random augmented patches (with GT, or LR only), the batches of
sample indices each process takes, and whole validation clips.

Patches are drawn by *index*: sample ``i`` always comes from ``np.random.default_rng((seed, i))``, so the data
stream is the same whatever the number of workers, and resuming at iteration ``k`` only needs ``k`` — no sampler
or worker state to save.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from .datasets import SCALE, ClipRecord, FrameReader, check_clip_length
from .degrade import bd_degrade, bi_degrade
from .lr_clips import LRClip, check_lr_clips

# LR pixels read around a patch when LR is made on the fly: more than the bicubic (±2) and BD (±2) supports,
# so the patch equals the same crop of the whole degraded frame.
DEGRADE_MARGIN = 4
DEGRADERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {"BI": bi_degrade, "BD": bd_degrade}


@dataclass(frozen=True)
class PatchSettings:
    clip_length: int = 15
    patch_size: int = 64                     # LR pixels
    lr_mode: str = "disk"                    # disk | BI | BD
    flip: bool = True
    rotate: bool = True
    reverse: bool = False


class TrainPatches(Dataset):
    """Sample ``i``: a random clip, start frame and aligned LR/GT patch, augmented — uint8 (T, 3, h, w) pairs."""

    has_gt = True

    def __init__(self, records: Sequence[ClipRecord], reader: FrameReader, settings: PatchSettings,
                 seed: int = 0) -> None:
        check_clip_length(records, settings.clip_length, settings.patch_size)
        self.records = list(records)
        self.reader = reader
        self.s = settings
        self.seed = seed

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng, s = np.random.default_rng((self.seed, index)), self.s
        rec, t0, y, x = _draw(rng, self.records, s, _lr_size)
        lr, gt = self._patch(rec, t0, y, x, *_lr_size(rec))
        lr, gt = augment(lr, gt, rng, s.flip, s.rotate, s.reverse)
        return _to_tensor(lr), _to_tensor(gt)

    def _patch(self, rec: ClipRecord, t0: int, y: int, x: int, lh: int, lw: int) -> tuple[np.ndarray, np.ndarray]:
        p, t1 = self.s.patch_size, t0 + self.s.clip_length
        if self.s.lr_mode == "disk":
            lr = self.reader.read(rec, "lr", t0, t1, (y, x, p, p))
            gt = self.reader.read(rec, "gt", t0, t1, (y * SCALE, x * SCALE, p * SCALE, p * SCALE))
            return lr, gt
        # LR on the fly: degrade a GT window a few LR pixels wider than the patch, keep its centre.
        y0, x0 = max(y - DEGRADE_MARGIN, 0), max(x - DEGRADE_MARGIN, 0)
        y1, x1 = min(y + p + DEGRADE_MARGIN, lh), min(x + p + DEGRADE_MARGIN, lw)
        window = self.reader.read(rec, "gt", t0, t1, (y0 * SCALE, x0 * SCALE, (y1 - y0) * SCALE, (x1 - x0) * SCALE))
        lr = DEGRADERS[self.s.lr_mode](window)[:, y - y0:y - y0 + p, x - x0:x - x0 + p]
        gt = window[:, (y - y0) * SCALE:(y - y0 + p) * SCALE, (x - x0) * SCALE:(x - x0 + p) * SCALE]
        return lr, gt


def _draw(rng: np.random.Generator, clips: Sequence[Any], s: PatchSettings,
          lr_size: Callable[[Any], tuple[int, int]]) -> tuple[Any, int, int, int]:
    """A sample's clip, start frame and LR patch corner (y, x), drawn from its ``rng`` in this order: the order is
    the data stream (a resumed run draws the same samples), so it never changes."""
    clip = clips[int(rng.integers(len(clips)))]
    t0 = int(rng.integers(clip.frames - s.clip_length + 1))
    h, w = lr_size(clip)
    y, x = int(rng.integers(h - s.patch_size + 1)), int(rng.integers(w - s.patch_size + 1))
    return clip, t0, y, x


def _lr_size(rec: ClipRecord) -> tuple[int, int]:
    return rec.gt_size[0] // SCALE, rec.gt_size[1] // SCALE


def augment(lr: np.ndarray, gt: np.ndarray | None, rng: np.random.Generator, flip: bool, rotate: bool,
            reverse: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """The same random flips / transpose / time reversal on every frame of both clips (T, H, W, 3); ``gt`` may
    be None (LR-only data)."""
    clips = [lr] if gt is None else [lr, gt]
    if flip and rng.random() < 0.5:
        clips = [c[:, :, ::-1] for c in clips]
    if flip and rng.random() < 0.5:
        clips = [c[:, ::-1] for c in clips]
    if rotate and rng.random() < 0.5:
        clips = [c.transpose(0, 2, 1, 3) for c in clips]
    if reverse and rng.random() < 0.5:
        clips = [c[::-1] for c in clips]
    return clips[0], (None if gt is None else clips[1])


def _to_tensor(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(frames.transpose(0, 3, 1, 2)))


class LRPatches(Dataset):
    """Sample ``i``: a random LR clip, start frame and patch, augmented — uint8 (T, 3, p, p), with an empty GT
    (shape (0,)) so batches keep the (LR, GT) form the training loop takes. Drawn by index as ``TrainPatches``."""

    has_gt = False

    def __init__(self, clips: Sequence[LRClip], settings: PatchSettings, seed: int = 0) -> None:
        check_lr_clips(clips, settings.clip_length, settings.patch_size)
        self.clips = list(clips)
        self.s = settings
        self.seed = seed

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng, s = np.random.default_rng((self.seed, index)), self.s
        clip, t0, y, x = _draw(rng, self.clips, s, lambda c: c.size)
        lr = clip.read(t0, t0 + s.clip_length, (y, x, s.patch_size, s.patch_size))
        lr, _ = augment(lr, None, rng, s.flip, s.rotate, s.reverse)
        return _to_tensor(lr), torch.zeros(0, dtype=torch.uint8)


class IterationSampler(Sampler[list[int]]):
    """Batches of sample indices for iterations ``start..total-1``, this process's share only.

    Iteration ``k`` of rank ``r`` (of ``world``) takes indices ``(k·world + r)·b … + b − 1``: the ranks never
    overlap, and a resumed run starts exactly where the interrupted one stopped.
    """

    def __init__(self, start: int, total: int, batch_per_rank: int, rank: int = 0, world: int = 1) -> None:
        self.start, self.total, self.batch, self.rank, self.world = start, total, batch_per_rank, rank, world

    def __iter__(self) -> Iterator[list[int]]:
        for k in range(self.start, self.total):
            base = (k * self.world + self.rank) * self.batch
            yield list(range(base, base + self.batch))

    def __len__(self) -> int:
        return max(self.total - self.start, 0)


# -- validation clips --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ValClip:
    name: str
    lr: np.ndarray                           # (T, h, w, 3) uint8
    gt: np.ndarray                           # (T, 4h, 4w, 3) uint8


def load_val_clip(rec: ClipRecord, reader: FrameReader, lr_mode: str, max_frames: int = 0,
                  crop: int = 0) -> ValClip:
    """A whole validation clip (or its first ``max_frames`` frames, centre ``crop`` LR pixels)."""
    n = rec.frames if max_frames <= 0 else min(max_frames, rec.frames)
    lh, lw = rec.gt_size[0] // SCALE, rec.gt_size[1] // SCALE
    ch, cw = (min(crop, lh), min(crop, lw)) if crop > 0 else (lh, lw)
    y, x = (lh - ch) // 2, (lw - cw) // 2
    if lr_mode == "disk":
        lr = reader.read(rec, "lr", 0, n, (y, x, ch, cw))
        gt = reader.read(rec, "gt", 0, n, (y * SCALE, x * SCALE, ch * SCALE, cw * SCALE))
    else:  # degrade whole frames, as a published LR set would be made, then crop
        full = reader.read(rec, "gt", 0, n, (0, 0, lh * SCALE, lw * SCALE))
        lr = DEGRADERS[lr_mode](full)[:, y:y + ch, x:x + cw]
        gt = full[:, y * SCALE:(y + ch) * SCALE, x * SCALE:(x + cw) * SCALE]
    return ValClip(rec.name, np.ascontiguousarray(lr), np.ascontiguousarray(gt))
