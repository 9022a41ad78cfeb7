"""The recurrent steps of BasicVSR (Contract 2) as plain tensor → tensor modules, the unit every export is built on.

torch.export unrolls Python loops, so a whole clip can only be exported for one frame count. One step has no
loop: it exports once with symbolic height and width, and a runtime loop (ONNX ``Scan``, or the host) runs it
for any number of frames. The first step gets zeros as the state and any frame as its neighbour: warping a zero
state gives zeros, so that equals the network's cold start exactly.
"""
from __future__ import annotations

import torch
from torch import nn

from ..models.basicvsr import BasicVSR

# Input and output names of each step graph (the ONNX files and the onnxruntime stepper use the same ones).
BACKWARD_IO = (("x_t", "x_next", "h_next"), ("h_t",))
FORWARD_IO = (("x_t", "x_prev", "h_prev", "h_b"), ("sr_t", "h_t"))
UNI_IO = (("x_t", "x_prev", "h_prev"), ("sr_t", "h_t"))


class BackwardStep(nn.Module):
    """``(x_t, x_{t+1}, h_{t+1}) → h_t`` of the backward branch."""

    def __init__(self, model: BasicVSR) -> None:
        super().__init__()
        self.model = model

    def forward(self, x_t: torch.Tensor, x_next: torch.Tensor, h_next: torch.Tensor) -> torch.Tensor:
        return self.model.backward_step(x_t, x_next, h_next)


class ForwardStep(nn.Module):
    """``(x_t, x_{t-1}, h_{t-1}[, h_b]) → (SR_t, h_t)``; without ``h_b`` for BasicVSR-uni."""

    def __init__(self, model: BasicVSR) -> None:
        super().__init__()
        self.model = model

    def forward(self, x_t: torch.Tensor, x_prev: torch.Tensor, h_prev: torch.Tensor,
                h_b: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.forward_step(x_t, x_prev, h_prev, h_b)


def step_modules(model: BasicVSR) -> dict[str, tuple[nn.Module, tuple[tuple[str, ...], tuple[str, ...]]]]:
    """Name → (module, (input names, output names)) of the steps a variant needs, in the order they run."""
    if model.spec.bidirectional:
        return {"backward": (BackwardStep(model), BACKWARD_IO), "forward": (ForwardStep(model), FORWARD_IO)}
    return {"forward": (ForwardStep(model), UNI_IO)}


def example_step_inputs(model: BasicVSR, names: tuple[str, ...], height: int, width: int,
                        seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Random inputs named like a step's (frames have 3 channels, states ``num_feat``)."""
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.rand(1, 3 if name.startswith("x") else model.num_feat, height, width, generator=g)
                 for name in names)
