"""In-memory inference: uint8 frames in, uint8 frames out (the exact whole-clip result), with progress and timing."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from .models.basicvsr import BasicVSR
from .stream import StreamRun

Progress = Callable[[int, int], None]


@dataclass
class SRResult:
    frames: np.ndarray           # (T, 4H, 4W, 3) uint8
    seconds: float               # wall time of the run (device synchronised)

    @property
    def seconds_per_frame(self) -> float:
        return self.seconds / max(len(self.frames), 1)


def super_resolve(model: BasicVSR, frames: np.ndarray, device: torch.device | str = "cpu",
                  progress: Progress | None = None, channels_last: bool | None = None) -> SRResult:
    """Super-resolve a clip held in memory, exactly as the whole-clip network would, via the streaming engine.

    For in-memory callers (the Compare step, studies); files go through ``core.stream.stream_sr`` instead, which
    never holds the clip. ``model`` is not changed: the engine runs a private copy (channels-last weights on the
    CPU by default, which oneDNN runs ~20% faster, bench/bench_prune.py).
    """
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected (T,H,W,3) uint8 frames, got {frames.shape} {frames.dtype}")
    if len(frames) < 2:
        raise ValueError("a clip needs at least 2 frames for BasicVSR")
    device = torch.device(device)
    run = StreamRun(model, frames, device=device, progress=progress, channels_last=channels_last)
    out = np.empty((len(frames), 4 * frames.shape[1], 4 * frames.shape[2], 3), np.uint8)
    _sync(device)
    for i, frame in enumerate(run):
        out[i] = frame
    _sync(device)
    return SRResult(out, run.seconds)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
