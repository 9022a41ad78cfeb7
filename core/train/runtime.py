"""Everything a stage needs about where it runs: device, precision, processes, run folder, events, control."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import ContextManager

import torch

from ..errors import ConfigError
from ..events import Event, EventSink, RunControl
from .config import TrainConfig
from .distributed import DistInfo


def amp_dtype(mode: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``runtime.amp`` (None: full float32). Mixed precision is CUDA-only."""
    if mode == "off" or device.type != "cuda":
        if mode in ("bf16", "fp16") and device.type != "cuda":
            raise ConfigError(f"runtime.amp = {mode} needs a CUDA device (this run is on {device.type})")
        return None
    if mode == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if mode == "bf16" else torch.float16


@dataclass
class RunContext:
    config: TrainConfig
    run_dir: Path
    device: torch.device
    dist: DistInfo
    sink: EventSink                          # already rank-0-only and teed into the log file
    control: RunControl | None
    amp: torch.dtype | None

    def emit(self, event: Event) -> None:
        self.sink(event)

    def autocast(self) -> ContextManager:
        if self.amp is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp)

    def to_float(self, batch: torch.Tensor) -> torch.Tensor:
        """uint8 (N, T, 3, h, w) from the loader → float32 in [0, 1] on the device (4x less to copy)."""
        return batch.to(self.device, non_blocking=True).float().div_(255.0)


def oom_advice(cfg: TrainConfig) -> str:
    d = cfg.data
    return (f"CUDA ran out of memory: lower data.batch_size ({d.batch_size}), data.patch_size ({d.patch_size}) "
            f"or data.clip_length ({d.clip_length}), or set runtime.amp to bf16/fp16")
