"""Unit scores for one network, flattened once so that planning any ratio is a few vectorised ops."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import nn

from ..models.spec import ArchSpec
from ..errors import PlanError
from ..data.calib import CALIB_AREA, CALIB_FRAMES, prepare_calibration
from .activity import ActivityStats, measure_activity
from .criteria import CRITERIA, get_criterion
from .scale import has_scale_factors
from .units import PrunableLayer, prunable_layers

__all__ = ["CRITERIA", "UnitScores", "blank_scores", "compute_scores", "scores_on"]


@dataclass(frozen=True)
class UnitScores:
    """Scores of every prunable unit, plus the global ascending order and each unit's rank in its layer."""

    spec: ArchSpec
    criterion: str
    layers: tuple[PrunableLayer, ...]
    per_layer: tuple[np.ndarray, ...]        # scores of each layer (read-only)
    order: np.ndarray                        # global ascending order of all units (indices into flat arrays)
    layer_of: np.ndarray                     # layer index of each flat unit
    rank_in_layer: np.ndarray                # 0 for the lowest-scoring unit of its layer, 1 for the next, ...
    offsets: np.ndarray                      # start of each layer in the flat arrays

    @property
    def n_units(self) -> int:
        return int(self.layer_of.size)

    @property
    def flat(self) -> np.ndarray:
        return np.concatenate(self.per_layer)


def compute_scores(model: nn.Module, criterion: str = "l1", activity: ActivityStats | None = None) -> UnitScores:
    """Score every unit of ``model`` (a BasicVSR, with or without scale factors) by ``criterion``; ``activity``
    (``measure_activity`` of ``model``) for the criteria that need frames."""
    crit = get_criterion(criterion)
    if crit.needs_frames and activity is None:
        raise PlanError(f"criterion {criterion!r} is measured on frames: give a calibration clip")
    spec: ArchSpec = model.spec
    layers = tuple(prunable_layers(spec))
    return _indexed(spec, criterion, layers, [crit.score(model, layer, activity).double().cpu().numpy()
                                              for layer in layers])


def blank_scores(spec: ArchSpec, criterion: str) -> UnitScores:
    """Every unit of a ``spec`` network scored 0: what a plan's size needs (how many units each layer may lose and
    keeps) without the network's weights or frames, so a plan can be checked before anything runs."""
    layers = tuple(prunable_layers(spec))
    return _indexed(spec, criterion, layers, [np.zeros(layer.size) for layer in layers])


def _indexed(spec: ArchSpec, criterion: str, layers: tuple[PrunableLayer, ...],
             per_layer: list[np.ndarray]) -> UnitScores:
    """``per_layer`` scores with the global order and ranks every plan is made from (all arrays read-only)."""
    for s in per_layer:
        s.setflags(write=False)
    sizes = np.array([len(s) for s in per_layer])
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    flat = np.concatenate(per_layer)
    layer_of = np.repeat(np.arange(len(layers)), sizes)
    # Stable sort by (score, layer, position) so ties resolve the same way every time.
    order = np.lexsort((np.arange(flat.size), layer_of, flat))
    rank = np.empty(flat.size, dtype=np.int64)
    for li, s in enumerate(per_layer):
        local = np.argsort(s, kind="stable")
        rank[offsets[li] + local] = np.arange(len(s))
    for arr in (order, layer_of, rank, offsets):
        arr.setflags(write=False)
    return UnitScores(spec, criterion, layers, tuple(per_layer), order, layer_of, rank, offsets)


def unusable_reason(model: nn.Module, criterion: str) -> str | None:
    """Why ``criterion`` cannot rank ``model``'s units (None when it can): the one check the CLI refuses by and the
    window greys a criterion out by."""
    if criterion == "scale" and not has_scale_factors(model):
        return ("criterion 'scale' ranks units by SIR's scale factors |gamma|, and this network has none: "
                "every unit would score the same (use contribution, l1 or l1-mean)")
    return None


def scores_on(model: nn.Module, criterion: str, frames: np.ndarray | None = None,
              source: str | None = None) -> UnitScores:
    """``compute_scores``, measuring ``model`` first on ``frames`` (uint8 (T, h, w, 3) LR frames, the first
    ``CALIB_FRAMES`` centre-cropped as reconstruction uses them) when the criterion needs frames."""
    why = unusable_reason(model, criterion)
    if why is not None:
        raise PlanError(why)
    if not get_criterion(criterion).needs_frames:
        return compute_scores(model, criterion)
    if frames is None:
        raise PlanError(f"criterion {criterion!r} is measured on frames: give a calibration clip")
    # Any clip a network runs on can be measured: two frames give each branch one recurrent step.
    x = prepare_calibration(frames, CALIB_FRAMES, CALIB_AREA, min_frames=2, min_side=1, purpose="measuring units")
    return compute_scores(model, criterion, measure_activity(model, x, source))
