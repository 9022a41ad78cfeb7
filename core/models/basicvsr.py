"""BasicVSR and BasicVSR-uni in one class family that also represents pruned widths.

Parameter names follow BasicSR (``backward_trunk.main.2.{k}.conv1.weight``, ``upconv1.weight`` ...), so the
official checkpoints load key for key. Optional scale factors γ (see ``core.ssl.scale``) live as attributes
on the layers they scale and are ``None`` in a plain network, so inference pays nothing for them.
"""
from __future__ import annotations

from typing import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from .layout import add_channels_, select_channels
from .spec import ArchSpec, BlockSpec, dense_spec
from .spynet import SpyNet
from .warp import flow_warp


def _scaled(x: torch.Tensor, gamma: torch.Tensor | None) -> torch.Tensor:
    return x if gamma is None else x * gamma.view(1, -1, 1, 1)


def _index_buffer(module: nn.Module, name: str, idx: tuple[int, ...] | None) -> None:
    module.register_buffer(name, None if idx is None else torch.tensor(idx, dtype=torch.long),
                           persistent=False)


class ResidualBlock(nn.Module):
    """conv-ReLU-conv residual block on the hidden stream.

    A pruned block reads only some stream channels (index-select) and adds into only some (index-add):
    the Residual Sparsity Connection keeps the 64-channel stream intact while each block shrinks.
    """

    def __init__(self, num_feat: int, spec: BlockSpec) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(spec.n_reads(num_feat), spec.mid, 3, 1, 1)
        self.conv2 = nn.Conv2d(spec.mid, spec.n_writes(num_feat), 3, 1, 1)
        _index_buffer(self, "reads", spec.reads)
        _index_buffer(self, "writes", spec.writes)
        self.gamma_in: nn.Parameter | None = None
        self.gamma_mid: nn.Parameter | None = None
        self.gamma_out: nn.Parameter | None = None

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """What the block adds to the stream channels it writes."""
        h = x if self.reads is None else select_channels(x, self.reads)
        # In-place ops only on fresh conv outputs (autograd-safe).
        h = F.relu(_scaled(self.conv1(_scaled(h, self.gamma_in)), self.gamma_mid), inplace=True)
        return _scaled(self.conv2(h), self.gamma_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.residual(x)
        # ``h + x`` is bit-identical to ``x + h``.
        return h.add_(x) if self.writes is None else add_channels_(x.clone(), self.writes, h)

    def update_(self, x: torch.Tensor) -> torch.Tensor:
        """``forward`` that adds into ``x`` itself: for a stream nobody else holds, outside autograd."""
        h = self.residual(x)
        return x.add_(h) if self.writes is None else add_channels_(x, self.writes, h)


class Trunk(nn.Module):
    """Input conv (frame + warped hidden state → 64-channel stream, never pruned) then residual blocks."""

    def __init__(self, num_feat: int, blocks: Iterable[BlockSpec]) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(num_feat + 3, num_feat, 3, 1, 1),
            nn.LeakyReLU(negative_slope=0.1, inplace=True),
            nn.Sequential(*[ResidualBlock(num_feat, b) for b in blocks]))

    @property
    def blocks(self) -> nn.Sequential:
        return self.main[2]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            return self.main(x)
        # Inference: the stream is this trunk's own fresh tensor, so each block adds into it in place.
        feat = self.main[1](self.main[0](x))
        for block in self.blocks:
            feat = block.update_(feat)
        return feat


class BasicVSR(nn.Module):
    """Bidirectional (``basicvsr``) or forward-only (``basicvsr-uni``) recurrent ×4 video SR network.

    Input (N, T, 3, h, w) in [0, 1]; output (N, T, 3, 4h, 4w). ``forward(x, return_hidden=True)`` also
    returns the final hidden states of each branch (used by Temporal Finetuning); ``return_hidden="all"`` the
    state of every recurrent step of each branch (used by distillation from the dense network).
    """

    def __init__(self, spec: ArchSpec | None = None) -> None:
        super().__init__()
        self.spec = spec if spec is not None else dense_spec()
        s = self.spec
        self.num_feat = s.num_feat
        self.spynet = SpyNet()
        if s.bidirectional:
            self.backward_trunk = Trunk(s.num_feat, s.backward_blocks)
            self.fusion = nn.Conv2d(2 * s.num_feat, s.fusion, 1, 1, 0)
        self.forward_trunk = Trunk(s.num_feat, s.forward_blocks)
        head_in = s.fusion if s.bidirectional else s.num_feat
        self.upconv1 = nn.Conv2d(head_in, 4 * s.upconv1, 3, 1, 1)
        self.upconv2 = nn.Conv2d(s.upconv1, 4 * s.upconv2, 3, 1, 1)
        self.conv_hr = nn.Conv2d(s.upconv2, s.conv_hr, 3, 1, 1)
        self.conv_last = nn.Conv2d(s.conv_hr, 3, 3, 1, 1)
        self.fusion_gamma: nn.Parameter | None = None
        self.upconv1_gamma: nn.Parameter | None = None
        self.upconv2_gamma: nn.Parameter | None = None
        self.conv_hr_gamma: nn.Parameter | None = None

    # -- structure helpers -------------------------------------------------------------------------
    def trunks(self) -> dict[str, Trunk]:
        out = {"forward": self.forward_trunk}
        if self.spec.bidirectional:
            out = {"backward": self.backward_trunk, **out}
        return out

    def flows(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Forward flows (frame i → i-1) and, when bidirectional, backward flows (i → i+1)."""
        n, t, c, h, w = x.shape
        x1 = x[:, :-1].reshape(-1, c, h, w)
        x2 = x[:, 1:].reshape(-1, c, h, w)
        fwd = self.spynet(x2, x1).view(n, t - 1, 2, h, w)
        bwd = self.spynet(x1, x2).view(n, t - 1, 2, h, w) if self.spec.bidirectional else None
        return fwd, bwd

    def upsample(self, feat: torch.Tensor, lr: torch.Tensor) -> torch.Tensor:
        """The ×4 head for one frame: (fusion) → two pixel shuffles → conv_hr → conv_last + bilinear skip."""
        # The activation commutes with the shuffle (a permutation), so it runs in place on the conv output.
        out = feat
        if self.spec.bidirectional:
            out = F.leaky_relu(_scaled(self.fusion(out), self.fusion_gamma), 0.1, inplace=True)
        for conv, gamma in ((self.upconv1, self.upconv1_gamma), (self.upconv2, self.upconv2_gamma)):
            out = F.pixel_shuffle(F.leaky_relu(_scaled(conv(out), self._unit_gamma(gamma)), 0.1, inplace=True), 2)
        out = F.leaky_relu(_scaled(self.conv_hr(out), self.conv_hr_gamma), 0.1, inplace=True)
        out = self.conv_last(out)
        return out.add_(F.interpolate(lr, scale_factor=4, mode="bilinear", align_corners=False))

    @staticmethod
    def _unit_gamma(gamma: torch.Tensor | None) -> torch.Tensor | None:
        # One γ per pixel-shuffle unit = 4 consecutive filters that become one channel after PixelShuffle(2).
        return None if gamma is None else gamma.repeat_interleave(4)

    # -- recurrent steps (Contract 2) ---------------------------------------------------------------
    # Pure functions of tensors: the streaming engine (core.stream) and step exports are built on these, and the
    # batched ``forward`` below shares their pieces (``_layout``, ``_propagate``), so both agree by construction.
    @property
    def bidirectional(self) -> bool:
        return self.spec.bidirectional

    def _layout(self) -> torch.memory_format:
        # Channels-last weights (CPU inference) want channels-last inputs: a frame or warped state in the plain
        # layout would make every trunk's input conv convert it first (bench/bench_prune.py).
        return (torch.channels_last if self.forward_trunk.main[0].weight.is_contiguous(
            memory_format=torch.channels_last) else torch.contiguous_format)

    def trunk_input(self, frame: torch.Tensor, state: torch.Tensor | None, flow: torch.Tensor | None,
                    layout: torch.memory_format = torch.contiguous_format) -> torch.Tensor:
        """What a trunk reads at one step: the frame and the neighbour's state warped by ``flow`` (zeros at a
        clip end), concatenated."""
        if state is None:
            n, _, h, w = frame.shape
            prop = frame.new_zeros(n, self.num_feat, h, w).contiguous(memory_format=layout)
        else:
            prop = flow_warp(state, flow.permute(0, 2, 3, 1)).contiguous(memory_format=layout)
        return torch.cat([frame.contiguous(memory_format=layout), prop], dim=1)

    def _propagate(self, trunk: Trunk, frame: torch.Tensor, state: torch.Tensor | None, flow: torch.Tensor | None,
                   layout: torch.memory_format) -> torch.Tensor:
        """One recurrent step of a branch: the trunk on (frame, warped state)."""
        return trunk(self.trunk_input(frame, state, flow, layout))

    def flow(self, x_a: torch.Tensor, x_b: torch.Tensor) -> torch.Tensor:
        """SpyNet flow (N, 2, h, w) that warps features of frame ``x_b`` onto frame ``x_a``."""
        return self.spynet(x_a, x_b)

    def backward_step(self, x_t: torch.Tensor, x_next: torch.Tensor | None,
                      h_next: torch.Tensor | None) -> torch.Tensor:
        """Backward branch at frame t from frame t+1 and its state (both ``None`` at the last frame)."""
        if not self.spec.bidirectional:
            raise ValueError("basicvsr-uni has no backward branch")
        flow = None if h_next is None else self.flow(x_t, x_next)
        return self._propagate(self.backward_trunk, x_t, h_next, flow, self._layout())

    def forward_step(self, x_t: torch.Tensor, x_prev: torch.Tensor | None, h_prev: torch.Tensor | None,
                     h_b: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward branch and head at frame t: (SR frame (N, 3, 4h, 4w), forward state). ``h_b``: the backward
        state of frame t (``None`` for basicvsr-uni); ``x_prev``/``h_prev`` ``None`` at the first frame."""
        layout = self._layout()
        flow = None if h_prev is None else self.flow(x_t, x_prev)
        h = self._propagate(self.forward_trunk, x_t, h_prev, flow, layout)
        return self.upsample(self._head_input(h_b, h, layout), x_t), h

    def _head_input(self, h_b: torch.Tensor | None, h_f: torch.Tensor, layout: torch.memory_format) -> torch.Tensor:
        if not self.spec.bidirectional:
            return h_f
        if h_b is None:
            raise ValueError("basicvsr needs the backward state of the frame (h_b)")
        return torch.cat([h_b.contiguous(memory_format=layout), h_f], dim=1)

    # -- forward -----------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, return_hidden: bool | str = False,
                progress: Callable[[int, int], None] | None = None):
        """``progress(done, total)`` is called after each recurrent step (it may raise to cancel).

        The whole clip at once (batched flows, autograd): what training uses. Inference streams the same steps.
        ``return_hidden``: False → the SR clip; True → (SR clip, {branch: final state}) where the final state of
        ``backward`` is the one at frame 0 and of ``forward`` the one at frame T-1; ``"all"`` → (SR clip,
        {branch: [state at frame 0, ..., state at frame T-1]}), every step's state in frame order (the tensors
        the steps made, no copies), each equal to what ``backward_step`` / ``forward_step`` return.
        """
        if return_hidden not in (False, True, "all"):
            raise ValueError(f"return_hidden must be False, True or 'all', got {return_hidden!r}")
        n, t, _, h, w = x.shape
        if t < 2:
            raise ValueError("BasicVSR needs at least 2 frames")
        every_step = return_hidden == "all"
        steps = t * (2 if self.spec.bidirectional else 1)
        tick = (lambda done: progress(done, steps)) if progress is not None else (lambda done: None)
        flows_fwd, flows_bwd = self.flows(x)
        layout = self._layout()
        frames = [x[:, i].contiguous(memory_format=layout) for i in range(t)]
        feats_bwd: list[torch.Tensor | None] = [None] * t
        hidden: dict[str, torch.Tensor] = {}
        if self.spec.bidirectional:
            prop = None
            for i in range(t - 1, -1, -1):
                prop = self._propagate(self.backward_trunk, frames[i], prop,
                                       None if prop is None else flows_bwd[:, i], layout)
                feats_bwd[i] = prop
                tick(t - i)
            hidden["backward"] = list(feats_bwd) if every_step else prop
        prop = None
        outs = []
        states_fwd: list[torch.Tensor] = []
        for i in range(t):
            prop = self._propagate(self.forward_trunk, frames[i], prop,
                                   None if prop is None else flows_fwd[:, i - 1], layout)
            outs.append(self.upsample(self._head_input(feats_bwd[i], prop, layout), x[:, i]))
            feats_bwd[i] = None  # free memory as we go
            if every_step:
                states_fwd.append(prop)
            tick(steps - t + i + 1)
        hidden["forward"] = states_fwd if every_step else prop
        out = torch.stack(outs, dim=1)
        return (out, hidden) if return_hidden else out

    # -- accounting --------------------------------------------------------------------------------
    def count_parameters(self, include_spynet: bool = True) -> int:
        """Learnable weights (γ excluded: they fold away); SpyNet's mean/std buffers are not parameters."""
        return sum(p.numel() for name, p in self.named_parameters()
                   if "gamma" not in name and (include_spynet or not name.startswith("spynet.")))
