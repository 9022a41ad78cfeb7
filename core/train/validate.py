"""Validation PSNR of a network on whole clips, scored with the project's BasicSR-exact metrics."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ContextManager, Callable, Iterator, Sequence

import numpy as np
import torch

from ..data.datasets import ClipRecord, FrameReader
from ..data.patches import ValClip, load_val_clip
from ..io.frames import frames_to_tensor, tensor_to_frames
from ..metrics import psnr
from ..models.basicvsr import BasicVSR


@dataclass
class ValSet:
    """The validation clips, loaded one at a time when scored (REDS4 GT is >1 GB in memory)."""

    records: Sequence[ClipRecord]
    reader: FrameReader
    lr_mode: str
    max_frames: int = 0
    crop: int = 0
    y_channel: bool = False

    def clips(self) -> Iterator[ValClip]:
        for rec in self.records:
            yield load_val_clip(rec, self.reader, self.lr_mode, self.max_frames, self.crop)


@torch.no_grad()
def validation_psnr(model: BasicVSR, valset: ValSet, device: torch.device,
                    autocast: Callable[[], ContextManager]) -> float:
    """Mean over clips of the mean per-frame PSNR (crop border 0), as VSR tables are computed."""
    was_training = model.training
    model.eval()
    scores = []
    try:
        for clip in valset.clips():
            with autocast():
                out = model(frames_to_tensor(clip.lr).to(device))
            sr = tensor_to_frames(out.float())
            scores.append(np.mean([psnr(s, g, 0, valset.y_channel) for s, g in zip(sr, clip.gt)]))
    finally:
        model.train(was_training)
    return float(np.mean(scores))
