"""What each convolution of a network reads and writes on real frames: the per-channel mean square of its input
and of its output, measured in one pass over calibration frames (no ground truth).

Why: a weight norm says what a unit *could* contribute; the frames say what it *does*. A filter whose output is
always near zero after ReLU, or a stream channel a block barely writes, can go whatever its weights look like,
and the data-driven criterion (``core.ssl.criteria``) ranks units by exactly that.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..models.basicvsr import BasicVSR
from .scale import fold_scale_factors, has_scale_factors


@dataclass(frozen=True)
class ConvActivity:
    input_power: torch.Tensor       # (in_channels,) float64: mean of x² per input channel
    output_power: torch.Tensor      # (out_channels,) float64: mean of y² per output channel (before activation)


@dataclass(frozen=True)
class ActivityStats:
    """Per-conv activity of one network on some frames; ``source`` says which (a clip name), for the record."""

    convs: dict[str, ConvActivity]
    frames: int
    size: tuple[int, int]
    source: str | None = None

    def __getitem__(self, conv: str) -> ConvActivity:
        return self.convs[conv]


@torch.no_grad()
def measure_activity(model: BasicVSR, x: torch.Tensor, source: str | None = None) -> ActivityStats:
    """Run ``model`` (scale factors folded in first, on a copy) over ``x`` (1, T, 3, h, w) in [0, 1] and record
    every convolution's input and output power outside SpyNet. ``model`` is not changed."""
    net = fold_scale_factors(model) if has_scale_factors(model) else model
    sums: dict[str, list] = {}

    def hook(name: str):
        def record(_module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            entry = sums.setdefault(name, [0.0, 0.0, 0])
            entry[0] = entry[0] + inputs[0].double().pow(2).mean(dim=(0, 2, 3))
            entry[1] = entry[1] + output.double().pow(2).mean(dim=(0, 2, 3))
            entry[2] += 1
        return record

    handles = [m.register_forward_hook(hook(name)) for name, m in net.named_modules()
               if isinstance(m, nn.Conv2d) and not name.startswith("spynet")]
    try:         # BasicVSR has no train-mode-only layers: the pass is the inference pass, nothing to switch
        net(x.to(next(net.parameters()).device, torch.float32))
    finally:
        for h in handles:
            h.remove()
    convs = {name: ConvActivity((s_in / n).cpu(), (s_out / n).cpu()) for name, (s_in, s_out, n) in sums.items()}
    return ActivityStats(convs, int(x.shape[1]), (int(x.shape[-2]), int(x.shape[-1])), source)
