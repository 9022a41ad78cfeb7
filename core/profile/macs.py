"""MACs counted at the dispatcher level, so functional ops (flow-warp ``grid_sample``, bilinear
interpolation, SpyNet's pooling, pixel shuffle) are seen as well as the convolutions.

Counting runs on the ``meta`` device: shapes only, no arithmetic, so a full BasicVSR at 180×320 counts in
well under a second. One multiply-accumulate = one MAC (a conv's bias add is not counted).
"""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from ..models.basicvsr import BasicVSR
from ..models.spec import ArchSpec

# MACs per output element of the non-conv ops that do arithmetic; listed zero-MAC ops are still reported.
_GRID_SAMPLE_MACS = {0: 4, 1: 0, 2: 16}      # bilinear, nearest, bicubic
_INTERP_MACS = {"upsample_bilinear2d": 4, "upsample_bicubic2d": 16, "upsample_nearest2d": 0}
_ZERO_MAC_OPS = {"pixel_shuffle"}


def _op_macs(name: str, args: tuple, out) -> int | None:
    if name == "convolution":
        weight = args[1]
        return out.numel() * weight.shape[1] * math.prod(weight.shape[2:])
    if name == "grid_sampler_2d":
        return out.numel() * _GRID_SAMPLE_MACS.get(int(args[2]), 4)
    if name in _INTERP_MACS:
        return out.numel() * _INTERP_MACS[name]
    if name == "avg_pool2d":
        return out.numel() * math.prod(args[1] if isinstance(args[1], (list, tuple)) else (args[1], args[1]))
    if name in ("mm", "bmm"):
        return out.numel() * args[0].shape[-1]
    if name == "addmm":
        return out.numel() * args[1].shape[-1]
    if name in _ZERO_MAC_OPS:
        return 0
    return None


class MacCounter(TorchDispatchMode):
    """Accumulates MACs per (scope, op); the scope switches to ``spynet`` inside the flow network."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter[tuple[str, str]] = Counter()
        self.scope = "network"

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        name = func.overloadpacket.__name__
        macs = _op_macs(name, args, out)
        if macs is not None:
            self.counts[(self.scope, name)] += macs
        return out


@dataclass(frozen=True)
class MacReport:
    """Steady-state MACs per LR frame (the cost one more frame adds to a clip)."""

    height: int
    width: int
    network: int                      # everything but SpyNet
    spynet: int
    by_op: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return self.network + self.spynet


def _count_clip(spec: ArchSpec, frames: int, height: int, width: int) -> Counter[tuple[str, str]]:
    with torch.device("meta"):
        model = BasicVSR(spec).eval()
        x = torch.empty(1, frames, 3, height, width)
    counter = MacCounter()

    def enter(*_):
        counter.scope = "spynet"

    def leave(*_):
        counter.scope = "network"

    model.spynet.register_forward_pre_hook(enter)
    model.spynet.register_forward_hook(leave)
    with torch.no_grad(), counter:
        model(x)
    return counter.counts


def count_macs(spec: ArchSpec, height: int, width: int) -> MacReport:
    """Count by running 3- and 2-frame clips on ``meta`` and taking the difference (one frame's cost)."""
    three, two = _count_clip(spec, 3, height, width), _count_clip(spec, 2, height, width)
    diff = Counter({k: three[k] - two.get(k, 0) for k in three})
    by_op: Counter[str] = Counter()
    for (scope, op), v in diff.items():
        by_op[f"{scope}/{op}"] += v
    return MacReport(height, width,
                     network=sum(v for (s, _), v in diff.items() if s == "network"),
                     spynet=sum(v for (s, _), v in diff.items() if s == "spynet"),
                     by_op=dict(by_op))


def frame_macs(spec: ArchSpec, height: int, width: int) -> tuple[int, int]:
    """(network MACs, SpyNet MACs) per LR frame, in closed form: microseconds for any spec and size.

    Equal to ``count_macs`` (tests check it over variants, pruned widths and awkward sizes).
    """
    from .cost import conv_macs, fixed_macs

    network, spynet = fixed_macs(spec, height, width)
    return conv_macs(spec, height, width) + network, spynet
