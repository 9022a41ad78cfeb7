"""The recurrent steps of BasicVSR (Contract 2) as plain tensor → tensor modules, the units every export is built on.

torch.export unrolls Python loops, so a whole clip can only be exported for one frame count. A step has no loop:
it exports once with symbolic batch, height and width, and a runtime loop (ONNX ``Scan``, or the host) runs it for
any number of frames. Each step is exported in two parts joined again in the ONNX graph: SpyNet's ``flow`` (the
same function for both branches, so the slow symbolic trace of its pyramid happens once) and the propagation
(warp, trunk, and for the forward branch the ×4 head) given that flow. The first step of a branch gets zeros as
the state and any frame as its neighbour: warping a zero state gives zeros, the network's cold start exactly.
"""
from __future__ import annotations

import torch
from torch import nn

from ..models.basicvsr import BasicVSR

# Input and output names of the graphs (the ONNX files and the onnxruntime stepper use the same ones).
FLOW_IO = (("x_a", "x_b"), ("flow",))
BACKWARD_IO = (("x_t", "x_next", "h_next"), ("h_t",))
FORWARD_IO = (("x_t", "x_prev", "h_prev", "h_b"), ("sr_t", "h_t"))
UNI_IO = (("x_t", "x_prev", "h_prev"), ("sr_t", "h_t"))
NEIGHBOUR = {"backward": "x_next", "forward": "x_prev"}     # the frame each step's flow is computed against


class Flow(nn.Module):
    """``(x_a, x_b) → flow`` warping features of frame b onto frame a (``BasicVSR.flow``)."""

    def __init__(self, model: BasicVSR) -> None:
        super().__init__()
        self.model = model

    def forward(self, x_a: torch.Tensor, x_b: torch.Tensor) -> torch.Tensor:
        return self.model.flow(x_a, x_b)


class BackwardProp(nn.Module):
    """``backward_step`` with its flow given: ``(x_t, h_{t+1}, flow) → h_t``."""

    def __init__(self, model: BasicVSR) -> None:
        super().__init__()
        self.model = model

    def forward(self, x_t: torch.Tensor, h_next: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        m = self.model
        return m._propagate(m.backward_trunk, x_t, h_next, flow, m._layout())


class ForwardProp(nn.Module):
    """``forward_step`` with its flow given: ``(x_t, h_{t-1}, flow[, h_b]) → (SR_t, h_t)``."""

    def __init__(self, model: BasicVSR) -> None:
        super().__init__()
        self.model = model

    def forward(self, x_t: torch.Tensor, h_prev: torch.Tensor, flow: torch.Tensor,
                h_b: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        m = self.model
        layout = m._layout()
        h = m._propagate(m.forward_trunk, x_t, h_prev, flow, layout)
        return m.upsample(m._head_input(h_b, h, layout), x_t), h


def prop_modules(model: BasicVSR) -> dict[str, tuple[nn.Module, tuple[tuple[str, ...], tuple[str, ...]]]]:
    """Branch name → (propagation module, (input names, output names)), in running order."""
    if model.spec.bidirectional:
        return {"backward": (BackwardProp(model), (("x_t", "h_next", "flow"), BACKWARD_IO[1])),
                "forward": (ForwardProp(model), (("x_t", "h_prev", "flow", "h_b"), FORWARD_IO[1]))}
    return {"forward": (ForwardProp(model), (("x_t", "h_prev", "flow"), UNI_IO[1]))}


def step_io(model: BasicVSR) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """Branch name → (input names, output names) of the whole step (flow included)."""
    if model.spec.bidirectional:
        return {"backward": BACKWARD_IO, "forward": FORWARD_IO}
    return {"forward": UNI_IO}


def example_inputs(model: BasicVSR, names: tuple[str, ...], height: int, width: int, batch: int = 2,
                   seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Random inputs named like a graph's: frames ``x_*`` have 3 channels, ``flow`` 2, states ``num_feat``.

    The batch is 2 by default: torch.export specializes a size of 1, and the exports keep the batch symbolic.
    """
    g = torch.Generator().manual_seed(seed)

    def channels(name: str) -> int:
        return 3 if name.startswith("x") else 2 if name == "flow" else model.num_feat

    return tuple(torch.rand(batch, channels(name), height, width, generator=g) for name in names)
