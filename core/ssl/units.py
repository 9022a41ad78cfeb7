"""The prunable layers of a BasicVSR network and the units each one has.

A *layer* here is one set of units ranked together: the stream channels a residual block reads (``in``),
its conv1 filters (``mid``), the stream channels it writes (``out``), and in the head the fusion and conv_hr
filters and the pixel-shuffle units of upconv1/upconv2 (4 consecutive filters each). SpyNet, each trunk's
input conv, conv_last and the 64-channel hidden stream itself are never pruned.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..models.spec import ArchSpec

KINDS = ("stream-in", "filter", "stream-out", "ps-unit")


@dataclass(frozen=True)
class PrunableLayer:
    name: str          # e.g. "forward.3.in", "upconv1"
    group: str         # "backward" | "forward" | "head"
    kind: str          # one of KINDS
    owner: str         # module holding the γ attribute
    gamma: str         # attribute name of that γ on ``owner``
    conv: str          # module path of the conv whose weights define the units
    axis: int          # 0: units are output filters; 1: units are input channels
    unit_size: int     # filters per unit (4 for a pixel-shuffle unit)
    size: int          # number of units in the current network


def prunable_layers(spec: ArchSpec) -> list[PrunableLayer]:
    """Every prunable layer of ``spec`` in network order: backward trunk, forward trunk, head."""
    layers: list[PrunableLayer] = []
    for trunk in (("backward", "forward") if spec.bidirectional else ("forward",)):
        for k, block in enumerate(spec.trunk_blocks(trunk)):
            owner = f"{trunk}_trunk.main.2.{k}"
            layers += [
                PrunableLayer(f"{trunk}.{k}.in", trunk, "stream-in", owner, "gamma_in", f"{owner}.conv1", 1, 1,
                              block.n_reads(spec.num_feat)),
                PrunableLayer(f"{trunk}.{k}.mid", trunk, "filter", owner, "gamma_mid", f"{owner}.conv1", 0, 1,
                              block.mid),
                PrunableLayer(f"{trunk}.{k}.out", trunk, "stream-out", owner, "gamma_out", f"{owner}.conv2", 0, 1,
                              block.n_writes(spec.num_feat)),
            ]
    if spec.bidirectional:
        layers.append(PrunableLayer("fusion", "head", "filter", "", "fusion_gamma", "fusion", 0, 1, spec.fusion))
    layers += [
        PrunableLayer("upconv1", "head", "ps-unit", "", "upconv1_gamma", "upconv1", 0, 4, spec.upconv1),
        PrunableLayer("upconv2", "head", "ps-unit", "", "upconv2_gamma", "upconv2", 0, 4, spec.upconv2),
        PrunableLayer("conv_hr", "head", "filter", "", "conv_hr_gamma", "conv_hr", 0, 1, spec.conv_hr),
    ]
    return layers


def stream_layer_names(spec: ArchSpec) -> list[str]:
    """The layers that cut the hidden stream itself (the channels each block reads and writes). Locking them all
    (``keep_stream``) prunes only each block's inner filters and the head: at equal MACs that recovered better on
    every clip measured (README, "Keep the hidden stream whole"), but it caps the saving near 2.4x fewer MACs."""
    return [l.name for l in prunable_layers(spec) if l.kind in ("stream-in", "stream-out")]


def owner_module(model: nn.Module, layer: PrunableLayer) -> nn.Module:
    return model.get_submodule(layer.owner) if layer.owner else model


def get_gamma(model: nn.Module, layer: PrunableLayer) -> torch.Tensor | None:
    return getattr(owner_module(model, layer), layer.gamma)


def layer_widths(spec: ArchSpec) -> list[dict[str, object]]:
    """Every prunable layer of ``spec`` with its kept units and the dense network's total (``info --json``)."""
    from ..models.spec import dense_spec

    dense = prunable_layers(dense_spec(spec.variant, spec.num_feat, spec.num_block))
    return [{"name": l.name, "group": l.group, "kind": l.kind, "kept": l.size, "total": d.size}
            for l, d in zip(prunable_layers(spec), dense)]
