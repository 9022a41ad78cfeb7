"""Reference lines for the Train step's validation chart: what bicubic upscaling and the network the run starts
from (the dense one) score on the same validation frames, scored exactly as the run's validation scores.

Computed once per (start network, validation set) in the training job before the run starts, and only when the
validation set is small enough to be cheap on this device (the start network's line is skipped otherwise, and
the chart says why); bicubic upscaling costs no network.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from core.data.datasets import SCALE, FrameReader
from core.metrics import bicubic_upscale
from core.io.output import path_relation
from core.metrics import psnr
from core.train.config import TrainConfig
from core.train.data import val_records
from core.train.validate import ValSet, validation_psnr

CPU_BUDGET_PIXELS = 3_000_000     # LR pixels × frames the start network may be run on here (~15 s on 2 cores)
GPU_BUDGET_PIXELS = 200_000_000


@dataclass(frozen=True)
class ValReference:
    """Mean validation PSNR (dB) of bicubic upscaling and of the start network, on ``frames`` frames."""

    bicubic: float
    start: float | None               # None: skipped (``skipped`` says why) or no start network (from scratch)
    start_label: str                  # "dense" or "start network" (a pruned file as the start)
    frames: int
    clips: int
    on_training_frames: bool
    skipped: str = ""


def on_training_frames(cfg: TrainConfig) -> bool:
    """Whether the validation clips are (among) the training clips, as in quick.yaml: the validation PSNR is then
    measured on frames the run trains on."""
    v, d = cfg.val, cfg.data
    pairs = [(v.root, d.root), (v.lr_root, d.lr_root)]       # GT data, or LR-only data (quick.yaml)
    return any(a is not None and b is not None and path_relation(a, b) is not None for a, b in pairs)


def reference_key(cfg: TrainConfig, device: str) -> tuple:
    v = cfg.val
    return (cfg.model.weights, cfg.data.kind, str(cfg.data.root), str(v.root), str(v.lr_root), tuple(v.clips or ()),
            v.max_clips, v.max_frames, v.crop, v.y_channel, cfg.data.lr, device)


def _valset(cfg: TrainConfig) -> ValSet | None:
    records, mode = val_records(cfg)
    if not records:
        return None
    y = cfg.val.y_channel if cfg.val.y_channel is not None else cfg.data.kind != "reds"   # as the run scores
    return ValSet(records, FrameReader(), mode, cfg.val.max_frames, cfg.val.crop, y)


def _lr_pixels(valset: ValSet) -> tuple[int, int]:
    """(frames, LR pixels × frames) of the validation set, from its records (nothing is read)."""
    frames = pixels = 0
    for rec in valset.records:
        n = rec.frames if valset.max_frames <= 0 else min(valset.max_frames, rec.frames)
        h, w = rec.gt_size[0] // SCALE, rec.gt_size[1] // SCALE
        if valset.crop > 0:
            h, w = min(valset.crop, h), min(valset.crop, w)
        frames += n
        pixels += n * h * w
    return frames, pixels


def _start_network(cfg: TrainConfig):
    from core.io.checkpoint import load_checkpoint
    from core.io.weights import official_weight

    weights = cfg.model.weights
    if weights is None:
        return None
    path = official_weight(weights.split(":", 1)[1]) if weights.startswith("official:") else Path(weights)
    return None if path is None else load_checkpoint(path).model


def validation_references(cfg: TrainConfig, device, checkpoint: Callable[[], None] = lambda: None
                          ) -> ValReference | None:
    """Bicubic's and the start network's validation PSNR (None without a validation set). Raises what reading the
    set or the start network raises; callers treat that as "no reference lines" (the run says what is wrong).
    ``checkpoint`` is called between clips (a Cancel raises there: the run's Cancel must not wait for these)."""
    valset = _valset(cfg)
    if valset is None:
        return None
    frames, pixels = _lr_pixels(valset)
    scores, clips = [], 0
    for clip in valset.clips():
        checkpoint()
        up = bicubic_upscale(clip.lr)
        scores.append(np.mean([psnr(s, g, 0, valset.y_channel) for s, g in zip(up, clip.gt)]))
        clips += 1
    bicubic = float(np.mean(scores))
    same = on_training_frames(cfg)
    budget = GPU_BUDGET_PIXELS if device.type == "cuda" else CPU_BUDGET_PIXELS
    if pixels > budget:
        return ValReference(bicubic, None, "dense", frames, clips, same,
                            skipped=f"the start network's line is skipped: {frames} validation frames would take "
                                    "minutes here")
    checkpoint()
    model = _start_network(cfg)
    if model is None:
        return ValReference(bicubic, None, "dense", frames, clips, same, skipped="trained from scratch")
    label = "dense" if model.spec.is_dense else "start network"
    start = validation_psnr(model.to(device), valset, device, contextlib.nullcontext)
    return ValReference(bicubic, start, label, frames, clips, same)
