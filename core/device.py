"""Pick the compute device from the user's ``auto|cpu|cuda`` choice, and describe it for status bars."""
from __future__ import annotations

import torch

from .errors import UserError

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(choice: str = "auto") -> torch.device:
    if choice not in DEVICE_CHOICES and not choice.startswith("cuda:"):
        raise UserError(f"unknown device {choice!r} (use auto, cpu or cuda)")
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for, but no CUDA GPU is available to PyTorch")
    return torch.device(choice)


def describe_device(device: torch.device) -> str:
    """'CPU (2 threads)' or 'NVIDIA H100 80GB HBM3, 79.1 GiB'."""
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"{props.name}, {props.total_memory / 2**30:.1f} GiB"
    return f"CPU ({torch.get_num_threads()} threads)"
