"""Sensitivity: prune one layer group alone (each of its layers by the same fraction) and measure the clip.

Distiller's and AIMET's per-layer sensitivity analysis for BasicVSR: which blocks can lose units cheaply and
which cannot. Groups are a residual block's three prunable layers (``block``, the default: 64 groups for
BasicVSR), five consecutive blocks (``segment``: 16 groups, a quick first look on a CPU) or every prunable
layer alone (``layer``); the head's layers are always their own groups. Units are chosen by the same criterion
as a plan.
"""
from __future__ import annotations

import copy
import math
import time
from collections import OrderedDict

import torch

from ..events import EventSink, Log, Progress, RunControl, StageFinished, StageStarted, ignore
from ..models.basicvsr import BasicVSR
from ..ssl import DEFAULT_CRITERION, LayerOverride, Plan, make_plan, prune_to_plan, scores_on
from ..ssl.scores import UnitScores
from .clip import Scorer, StudyClip
from .results import GroupSensitivity, SensitivityResult, StudyError

GRANULARITIES = ("block", "segment", "layer")
SEGMENT_BLOCKS = 5


def layer_groups(scores: UnitScores, granularity: str = "block") -> "OrderedDict[str, list[str]]":
    """Group name → its prunable layers, in network order."""
    if granularity not in GRANULARITIES:
        raise StudyError(f"unknown granularity {granularity!r} (use one of: {', '.join(GRANULARITIES)})")
    groups: OrderedDict[str, list[str]] = OrderedDict()
    for layer in scores.layers:
        groups.setdefault(_group_of(layer.name, layer.group, granularity, scores), []).append(layer.name)
    return groups


def _group_of(name: str, trunk: str, granularity: str, scores: UnitScores) -> str:
    if trunk == "head" or granularity == "layer":
        return name
    block = name.rsplit(".", 1)[0]
    if granularity == "block":
        return block
    k = int(block.split(".")[1])
    first = k // SEGMENT_BLOCKS * SEGMENT_BLOCKS
    last = min(first + SEGMENT_BLOCKS, len(scores.spec.trunk_blocks(trunk))) - 1
    return f"{trunk}.{first}" if first == last else f"{trunk}.{first}-{last}"


def group_plan(scores: UnitScores, layers: list[str], ratio: float, frame_size: tuple[int, int]) -> Plan:
    """A plan that prunes ``round(size·ratio)`` lowest-scoring units of each named layer and nothing else.

    Built with ``make_plan`` itself (every other layer locked, each named layer capped at the ratio, the global
    count equal to the sum of the caps), so the study prunes exactly as the app and the CLI do.
    """
    names = set(layers)
    sizes = {l.name: l.size for l in scores.layers}
    counts = {n: min(int(round(sizes[n] * ratio)), sizes[n] - 1) for n in layers}
    overrides = {l.name: LayerOverride(locked=True) if l.name not in names
                 else LayerOverride(max_ratio=(counts[l.name] + 0.5) / l.size) for l in scores.layers}
    for n in layers:          # a cap of exactly counts[n] units (the +0.5 keeps floor() clear of rounding)
        if counts[n] == 0:
            overrides[n] = LayerOverride(locked=True)
    global_ratio = sum(counts.values()) / scores.n_units
    return make_plan(scores, global_ratio, overrides=overrides, frame_size=frame_size)


def check_ratio(ratio: float) -> float:
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not math.isfinite(ratio) \
            or not 0.0 <= ratio < 1.0:
        raise StudyError(f"ratio must be a number in [0, 1), got {ratio!r}")
    return float(ratio)


def run_sensitivity(model: BasicVSR, clip: StudyClip, *, ratio: float = 0.5, criterion: str = DEFAULT_CRITERION,
                    granularity: str = "block", device: torch.device | str = "cpu", y: bool = True,
                    checkpoint: str = "", sink: EventSink = ignore, control: RunControl | None = None,
                    only: list[str] | None = None) -> SensitivityResult:
    """Prune each group alone at ``ratio`` and score the clip; ``only`` limits the study to named groups."""
    ratio = check_ratio(ratio)
    device = torch.device(device)
    dense = copy.deepcopy(model).eval()          # inference converts the model in place: work on our own copy
    scores = scores_on(dense, criterion, clip.lr, clip.name)
    groups = layer_groups(scores, granularity)
    if only is not None:
        unknown = [g for g in only if g not in groups]
        if unknown:
            raise StudyError(f"unknown layer group {unknown[0]!r} (e.g. {', '.join(list(groups)[:3])})")
        groups = OrderedDict((g, groups[g]) for g in only)
    size = (int(clip.lr.shape[1]), int(clip.lr.shape[2]))
    scorer = Scorer(clip, device, y, control)
    total = len(groups) + 1
    sink(StageStarted("sensitivity", total))
    notes = list(clip.notes)
    if clip.gt is None:
        notes.append("no ground truth: PSNR is measured against the dense model's output, not a drop from GT")
        sink(Log("sensitivity: the clip has no ground truth; measuring against the dense model's output"))
    start = time.perf_counter()
    base = scorer.run(dense)
    scorer.set_reference(base.frames)
    dense_psnr = base.psnr if clip.gt is not None else None
    sink(Progress("sensitivity", 1, total))
    out = []
    for i, (name, layers) in enumerate(groups.items(), start=2):
        plan = group_plan(scores, layers, ratio, size)
        pruned = prune_to_plan(dense, plan)
        m = scorer.run(pruned)
        trunk = scores.layers[[l.name for l in scores.layers].index(layers[0])].group
        out.append(GroupSensitivity(
            name, trunk, tuple(layers), plan.units_pruned, sum(plan.layer(n).total for n in layers),
            plan.before.params - plan.after.params, plan.before.macs - plan.after.macs, m.psnr,
            None if dense_psnr is None else dense_psnr - m.psnr))
        sink(Progress("sensitivity", i, total, {"psnr": m.psnr}))
    sink(StageFinished("sensitivity"))
    return SensitivityResult(checkpoint, clip.info(y), ratio, criterion, granularity, dense_psnr, tuple(out),
                             time.perf_counter() - start, tuple(notes))
