"""Scale factors γ: one learnable multiplier per prunable unit, inserted into a loaded network.

γ starts at 1 (the output is unchanged); SIR then drives the γ of the units to be pruned towards 0.
Every γ sits right after a linear op (or right before conv1 for the input side), so it folds exactly into
that conv's weights and bias — which is what makes pruning physical rather than a mask.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from ..models.basicvsr import BasicVSR
from .units import PrunableLayer, get_gamma, owner_module, prunable_layers


def attach_scale_factors(model: BasicVSR) -> dict[str, nn.Parameter]:
    """Give every prunable layer of ``model`` a γ of ones (in place); return them by layer name."""
    gammas = {}
    for layer in prunable_layers(model.spec):
        ref = model.get_submodule(layer.conv).weight
        g = nn.Parameter(torch.ones(layer.size, dtype=ref.dtype, device=ref.device))
        setattr(owner_module(model, layer), layer.gamma, g)
        gammas[layer.name] = g
    return gammas


def scale_factors(model: BasicVSR) -> dict[str, nn.Parameter]:
    """The attached γ by layer name (empty for a plain network)."""
    out = {}
    for layer in prunable_layers(model.spec):
        g = get_gamma(model, layer)
        if g is not None:
            out[layer.name] = g
    return out


def has_scale_factors(model: BasicVSR) -> bool:
    return bool(scale_factors(model))


@torch.no_grad()
def fold_scale_factors(model: BasicVSR) -> BasicVSR:
    """A copy of ``model`` with every γ multiplied into its conv and removed; outputs are unchanged."""
    out = copy.deepcopy(model)
    for layer in prunable_layers(out.spec):
        owner = owner_module(out, layer)
        g = getattr(owner, layer.gamma)
        if g is None:
            continue
        _fold(out.get_submodule(layer.conv), layer, g.detach())
        setattr(owner, layer.gamma, None)
    return out


def _fold(conv: nn.Conv2d, layer: PrunableLayer, gamma: torch.Tensor) -> None:
    if layer.axis == 1:
        conv.weight.mul_(gamma.view(1, -1, 1, 1))
        return
    per_filter = gamma.repeat_interleave(layer.unit_size)
    conv.weight.mul_(per_filter.view(-1, 1, 1, 1))
    conv.bias.mul_(per_filter)


@torch.no_grad()
def mask_units(model: BasicVSR, pruned: dict[str, tuple[int, ...]]) -> None:
    """Zero the γ of the given units in place (the 'masked network' physical pruning must equal)."""
    for layer in prunable_layers(model.spec):
        idx = pruned.get(layer.name)
        if idx:
            g = get_gamma(model, layer)
            if g is None:
                raise ValueError("attach scale factors before masking")
            g[list(idx)] = 0.0
