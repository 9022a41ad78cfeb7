"""The pruning criteria: one registry of (name, label, score function), so a new criterion is one entry here.

Every front end (CLI choices, the Prune step's list, the training config's ``sir.criterion``, score caching)
reads this registry; nothing else compares criterion names.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from ..errors import PlanError
from .activity import ActivityStats
from .units import PrunableLayer, get_gamma

ScoreFn = Callable[[nn.Module, PrunableLayer, "ActivityStats | None"], torch.Tensor]


@dataclass(frozen=True)
class Criterion:
    """How units are ranked: ``score(model, layer, activity)`` gives one non-negative number per unit (low = pruned
    first); ``activity`` is the network measured on calibration frames, given to criteria that ``needs_frames``."""

    name: str
    label: str            # shown in the GUI's criterion list
    help: str             # one line for the CLI and tooltips
    score: ScoreFn
    axis_label: str       # what the score distribution's x axis measures
    needs_frames: bool = False


def _unit_weights(model: nn.Module, layer: PrunableLayer) -> torch.Tensor:
    """|w| of the layer's conv arranged as (units, weights per unit), γ not yet applied."""
    w = model.get_submodule(layer.conv).weight.detach().abs()
    if layer.axis == 1:
        return w.transpose(0, 1).reshape(w.shape[1], -1)
    return w.reshape(w.shape[0] // layer.unit_size, -1)


def _with_gamma(model: nn.Module, layer: PrunableLayer, scores: torch.Tensor) -> torch.Tensor:
    gamma = get_gamma(model, layer)
    return scores if gamma is None else scores * gamma.detach().abs()


def l1_scores(model: nn.Module, layer: PrunableLayer, _activity: ActivityStats | None = None) -> torch.Tensor:
    """L1 norm of each unit's effective weights (γ folded in when present): the paper's criterion."""
    return _with_gamma(model, layer, _unit_weights(model, layer).sum(dim=1))


def mean_abs_scores(model: nn.Module, layer: PrunableLayer, _activity: ActivityStats | None = None) -> torch.Tensor:
    """Mean |w| per unit: the L1 norm divided by the unit's weight count.

    Why: one global L1 ranking sets filters of different shapes against each other — fusion's 1×1 filters
    (128 weights) lose to 3×3 ones (576) and a pixel-shuffle unit (4 filters) beats a single filter — so the
    global cut falls on layers for their shape, not their importance. Dividing by the count compares like with like.
    """
    return _with_gamma(model, layer, _unit_weights(model, layer).mean(dim=1))


def scale_scores(model: nn.Module, layer: PrunableLayer, _activity: ActivityStats | None = None) -> torch.Tensor:
    """|γ| of each unit; without scale factors every unit scores 1 (stock weights)."""
    gamma = get_gamma(model, layer)
    return torch.ones(layer.size) if gamma is None else gamma.detach().abs()


_NEXT_CONV = {"fusion": "upconv1", "upconv1": "upconv2", "upconv2": "conv_hr", "conv_hr": "conv_last"}


def _input_weight_power(model: nn.Module, conv: str) -> torch.Tensor:
    """Σ w² over everything a conv's input channel feeds: with the channel's power, what it adds to the output."""
    return model.get_submodule(conv).weight.detach().double().pow(2).sum(dim=(0, 2, 3)).cpu()


def contribution_scores(model: nn.Module, layer: PrunableLayer, activity: ActivityStats | None) -> torch.Tensor:
    """Each unit's share of the power of the tensor it feeds, measured on calibration frames.

    A unit's contribution to the next tensor is estimated as its power there (mean square of the channel, read
    by hooks) times the squared weights that carry it on; dividing by that tensor's power makes a trunk unit and
    a head unit comparable in one global ranking. Trunk units are measured in the hidden stream they change:
    a written channel by the block's residual power in it, a conv1 filter through conv2, a read channel through
    conv1 and then by the share of the stream the block's residual is.
    """
    if activity is None:
        raise PlanError("the contribution criterion measures the network on calibration frames: none were given")
    if layer.group == "head":
        nxt = _NEXT_CONV[layer.name]
        return (activity[nxt].input_power * _input_weight_power(model, nxt)
                / activity[nxt].output_power.sum()).float()
    block = layer.owner
    conv1, conv2 = activity[f"{block}.conv1"], activity[f"{block}.conv2"]
    stream = conv1.input_power.sum()
    if layer.kind == "stream-in":
        into_conv1 = conv1.input_power * _input_weight_power(model, f"{block}.conv1") / conv1.output_power.sum()
        return (into_conv1 * conv2.output_power.sum() / stream).float()
    if layer.kind == "filter":
        return (conv2.input_power * _input_weight_power(model, f"{block}.conv2") / stream).float()
    return (conv2.output_power / stream).float()


REGISTRY: dict[str, Criterion] = {c.name: c for c in (
    Criterion("l1", "L1 norm of weights", "L1 norm of each unit's weights (the paper's criterion)", l1_scores,
              "L1 norm"),
    Criterion("l1-mean", "Mean |w| (shape-normalized L1)",
              "L1 norm divided by the unit's weight count: filters of different shapes compete fairly",
              mean_abs_scores, "mean |w|"),
    Criterion("scale", "|γ| scale factor (after SIR)", "|gamma| of each unit's scale factor (after SIR)",
              scale_scores, "|γ|"),
    Criterion("contribution", "Contribution on the clip (data-driven)",
              "each unit's share of the power of the tensor it feeds, measured on calibration frames (--calib)",
              contribution_scores, "share of the next tensor's power", needs_frames=True),
)}
CRITERIA: tuple[str, ...] = tuple(REGISTRY)
DEFAULT_CRITERION = "contribution"   # measured after recovery at equal MACs: bench/bench_recovery.py


def get_criterion(name: str) -> Criterion:
    """The registered criterion ``name``; a ``PlanError`` naming the choices otherwise."""
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        raise PlanError(f"unknown criterion {name!r} (use one of: {', '.join(CRITERIA)})") from None
