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
from .units import PrunableLayer, get_gamma

ScoreFn = Callable[[nn.Module, PrunableLayer], torch.Tensor]


@dataclass(frozen=True)
class Criterion:
    """How units are ranked: ``score(model, layer)`` gives one non-negative number per unit (low = pruned first)."""

    name: str
    label: str            # shown in the GUI's criterion list
    help: str             # one line for the CLI and tooltips
    score: ScoreFn
    axis_label: str       # what the score distribution's x axis measures


def _unit_weights(model: nn.Module, layer: PrunableLayer) -> torch.Tensor:
    """|w| of the layer's conv arranged as (units, weights per unit), γ not yet applied."""
    w = model.get_submodule(layer.conv).weight.detach().abs()
    if layer.axis == 1:
        return w.transpose(0, 1).reshape(w.shape[1], -1)
    return w.reshape(w.shape[0] // layer.unit_size, -1)


def _with_gamma(model: nn.Module, layer: PrunableLayer, scores: torch.Tensor) -> torch.Tensor:
    gamma = get_gamma(model, layer)
    return scores if gamma is None else scores * gamma.detach().abs()


def l1_scores(model: nn.Module, layer: PrunableLayer) -> torch.Tensor:
    """L1 norm of each unit's effective weights (γ folded in when present): the paper's criterion."""
    return _with_gamma(model, layer, _unit_weights(model, layer).sum(dim=1))


def mean_abs_scores(model: nn.Module, layer: PrunableLayer) -> torch.Tensor:
    """Mean |w| per unit: the L1 norm divided by the unit's weight count.

    Why: one global L1 ranking sets filters of different shapes against each other — fusion's 1×1 filters
    (128 weights) lose to 3×3 ones (576) and a pixel-shuffle unit (4 filters) beats a single filter — so the
    global cut falls on layers for their shape, not their importance. Dividing by the count compares like with like.
    """
    return _with_gamma(model, layer, _unit_weights(model, layer).mean(dim=1))


def scale_scores(model: nn.Module, layer: PrunableLayer) -> torch.Tensor:
    """|γ| of each unit; without scale factors every unit scores 1 (stock weights)."""
    gamma = get_gamma(model, layer)
    return torch.ones(layer.size) if gamma is None else gamma.detach().abs()


REGISTRY: dict[str, Criterion] = {c.name: c for c in (
    Criterion("l1", "L1 norm of weights", "L1 norm of each unit's weights (the paper's criterion)", l1_scores,
              "L1 norm"),
    Criterion("l1-mean", "Mean |w| (shape-normalized L1)",
              "L1 norm divided by the unit's weight count: filters of different shapes compete fairly",
              mean_abs_scores, "mean |w|"),
    Criterion("scale", "|γ| scale factor (after SIR)", "|gamma| of each unit's scale factor (after SIR)",
              scale_scores, "|γ|"),
)}
CRITERIA: tuple[str, ...] = tuple(REGISTRY)
DEFAULT_CRITERION = "l1"


def get_criterion(name: str) -> Criterion:
    """The registered criterion ``name``; a ``PlanError`` naming the choices otherwise."""
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        raise PlanError(f"unknown criterion {name!r} (use one of: {', '.join(CRITERIA)})") from None
