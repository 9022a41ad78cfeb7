"""Distillation on the user's own frames, for a time budget: after reconstruction, the pruned network is pulled
towards the dense one's SR frames and its hidden states at every recurrent step (no GT), on random patches of the
calibration frames only.

Why its own loop and not a training run: ``compress`` distils for minutes on frames it holds in memory; the
training pipeline (``core.train``) is for runs of hours with run folders, resumption and several processes. The
loss is the training pipeline's (``core.train.losses.distill_loss``), so the two cannot drift.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from ..data.patches import augment
from ..events import EventSink, Progress, RunControl, ignore
from ..models.basicvsr import BasicVSR
from .losses import LossWeights, distill_loss

STAGE = "distil"


@dataclass(frozen=True)
class DistillSettings:
    """What quick.yaml's finetune stage uses, with the iteration count set by the time budget."""

    seconds: float                 # wall-clock budget; the iteration count is fitted to it after a few iterations
    clip_length: int = 4
    patch_size: int = 32
    lr: float = 1e-4
    probe: int = 3                 # iterations timed before the count is fixed
    seed: int = 0


@dataclass(frozen=True)
class DistillReport:
    iterations: int
    seconds: float
    first_loss: float
    last_loss: float

    def to_meta(self) -> dict:
        return {"method": "distillation from the dense network (SR frames and hidden states), LR frames only",
                "iterations": self.iterations, "seconds": round(self.seconds, 1),
                "loss_first": round(self.first_loss, 5), "loss_last": round(self.last_loss, 5)}


def _patch(frames: np.ndarray, s: DistillSettings, rng: np.random.Generator) -> torch.Tensor:
    t, h, w = frames.shape[:3]
    length, size = min(s.clip_length, t), min(s.patch_size, h, w)
    t0, y, x = (int(rng.integers(n - k + 1)) for n, k in ((t, length), (h, size), (w, size)))
    clip, _ = augment(frames[t0:t0 + length, y:y + size, x:x + size], None, rng, True, True, False)
    return torch.from_numpy(np.ascontiguousarray(clip.transpose(0, 3, 1, 2))).float().div_(255).unsqueeze(0)


def distill(dense: BasicVSR, student: BasicVSR, frames: np.ndarray, settings: DistillSettings, *,
            sink: EventSink = ignore, control: RunControl | None = None) -> tuple[BasicVSR, DistillReport]:
    """A copy of ``student`` distilled from ``dense`` on patches of ``frames`` (uint8 (T, h, w, 3) LR) for about
    ``settings.seconds``; SpyNet stays as it is. Neither model is changed."""
    started = time.perf_counter()
    teacher = copy.deepcopy(dense).float().eval()
    net = copy.deepcopy(student).float().train()
    for p in net.spynet.parameters():
        p.requires_grad_(False)
    params = [p for p in net.parameters() if p.requires_grad]
    optim = torch.optim.Adam(params, lr=settings.lr)
    weights = LossWeights(gt=0.0, sr=1.0, hidden=1.0)
    rng = np.random.default_rng(settings.seed)
    total, losses, i = settings.probe, [], 0
    while i < total:
        if control is not None:
            control.checkpoint()
        loss, _ = distill_loss(net, teacher, _patch(frames, settings, rng), None, weights)
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        losses.append(float(loss.detach()))
        i += 1
        if i == settings.probe:         # the count the budget allows, then a cosine decay over it
            per = (time.perf_counter() - started) / i
            total = max(i, int(settings.seconds / max(per, 1e-6)))
            schedule = torch.optim.lr_scheduler.LambdaLR(
                optim, lambda k: 0.5 * (1 + math.cos(math.pi * min(k, total - i) / max(total - i, 1))))
        elif i > settings.probe:
            schedule.step()
        sink(Progress(STAGE, i, total))
    net.eval()
    report = DistillReport(i, time.perf_counter() - started, float(np.mean(losses[:3])), float(np.mean(losses[-3:])))
    return net, report
