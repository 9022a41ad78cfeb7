"""Physical pruning: fold γ, then slice every conv to the plan's kept units — a genuinely smaller network.

Trunk blocks keep the 64-channel stream and only change which channels they read (index-select) and add
into (index-add). The head is sliced consistently through both pixel shuffles: keeping pixel-shuffle unit
``u`` of upconv1 keeps its filters 4u..4u+3 and, after the shuffle, input channel ``u`` of upconv2.
"""
from __future__ import annotations

import torch
from torch import nn

from ..models.basicvsr import BasicVSR
from .plan import Plan, apply_to_spec
from .scale import fold_scale_factors, has_scale_factors


def units_to_filters(units: torch.Tensor, size: int) -> torch.Tensor:
    return (units.view(-1, 1) * size + torch.arange(size)).view(-1)


def _slice(conv: nn.Conv2d, dst: nn.Conv2d, out_idx: torch.Tensor | None, in_idx: torch.Tensor | None) -> None:
    w, b = conv.weight.detach(), conv.bias.detach()
    if out_idx is not None:
        w, b = w.index_select(0, out_idx), b.index_select(0, out_idx)
    if in_idx is not None:
        w = w.index_select(1, in_idx)
    dst.weight.copy_(w)
    dst.bias.copy_(b)


@torch.no_grad()
def prune_to_plan(model: BasicVSR, plan: Plan) -> BasicVSR:
    """A new, smaller BasicVSR equal to ``model`` with the plan's pruned units masked (γ = 0)."""
    if model.spec.with_(meta={}) != plan.spec_before.with_(meta={}):
        raise ValueError("the plan was made for a network of a different shape")
    src = fold_scale_factors(model) if has_scale_factors(model) else model   # only read from: no copy needed
    spec = apply_to_spec(src.spec, plan.layers)
    dst = BasicVSR(spec).to(next(src.parameters()).device)
    dst.spynet.load_state_dict(src.spynet.state_dict())
    kept = {l.name: torch.tensor(l.kept, dtype=torch.long, device=dst.spynet.mean.device) for l in plan.layers}

    for trunk_name, trunk in src.trunks().items():
        new_trunk = dst.trunks()[trunk_name]
        _slice(trunk.main[0], new_trunk.main[0], None, None)
        for k, (blk, new) in enumerate(zip(trunk.blocks, new_trunk.blocks)):
            mid = kept[f"{trunk_name}.{k}.mid"]
            _slice(blk.conv1, new.conv1, mid, kept[f"{trunk_name}.{k}.in"])
            _slice(blk.conv2, new.conv2, kept[f"{trunk_name}.{k}.out"], mid)

    head_in = None
    if src.spec.bidirectional:
        _slice(src.fusion, dst.fusion, kept["fusion"], None)
        head_in = kept["fusion"]
    u1, u2 = kept["upconv1"], kept["upconv2"]
    _slice(src.upconv1, dst.upconv1, units_to_filters(u1, 4), head_in)
    _slice(src.upconv2, dst.upconv2, units_to_filters(u2, 4), u1)
    _slice(src.conv_hr, dst.conv_hr, kept["conv_hr"], u2)
    _slice(src.conv_last, dst.conv_last, None, kept["conv_hr"])
    return dst.train(model.training)
