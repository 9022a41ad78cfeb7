"""Multi-process training under ``torchrun``: process group, DDP wrapping and the few collectives we need.

``torchrun --nproc_per_node N`` sets RANK / WORLD_SIZE / LOCAL_RANK; without them this is a single process
and every helper is a no-op. NCCL on GPUs, gloo on CPU. Only rank 0 writes files and reports events.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1


def init_distributed(device: torch.device) -> tuple[DistInfo, torch.device]:
    """Join the process group when launched by torchrun; return this process's rank info and device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(), device
    info = DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return info, device


def shutdown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def wrap(model: nn.Module, info: DistInfo, device: torch.device) -> nn.Module:
    """DistributedDataParallel around ``model`` when running on several processes, else ``model`` itself."""
    if not info.enabled:
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids, broadcast_buffers=False)


def reduce_mean(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Mean of a small tensor over all processes (losses for logging and the NaN check)."""
    if info.enabled:
        values = values.clone()
        dist.all_reduce(values)
        values /= info.world
    return values


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()
