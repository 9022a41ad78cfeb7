"""Latency-aware planning: the plan that meets a ms-per-frame target on this device, losing the least score.

Why not a global ratio: with equal MACs, a plan whose widths the hardware likes runs faster, and some units cost
more time than others (a head filter at 16× the pixels, a trunk unit at 1×). Like NetAdapt/HALP, the planner
removes units in steps of ``GRID`` (so every width stays a multiple the kernels block by) from the layer where
the step loses the least score per millisecond the latency table says it saves, until the prediction meets the
target. Floors, locks and caps hold as in ``make_plan``; the result is a Plan with explicit per-layer widths
(``PlanSettings.widths``), which training reproduces exactly.
"""
from __future__ import annotations

import heapq
import math
from dataclasses import replace
from typing import Mapping

import numpy as np

from ..errors import PlanError
from ..profile.latency import GRID, LatencyTable, fps
from .plan import Plan, make_plan
from .scores import UnitScores
from .settings import LayerOverride, PlanSettings

HEAD = "head"


def _step(size: int) -> int:
    return GRID if size >= 2 * GRID else max(1, size // 4)


class _Widths:
    """Current width of every layer and the latency of the part (a block, or the head) each layer belongs to."""

    def __init__(self, scores: UnitScores, table: LatencyTable) -> None:
        self.table, self.spec = table, scores.spec
        self.width = {l.name: l.size for l in scores.layers}
        self.part = {l.name: (HEAD if l.group == "head" else l.name.rsplit(".", 1)[0]) for l in scores.layers}

    def part_ms(self, part: str, override: tuple[str, int] | None = None) -> float:
        w = dict(self.width)
        if override is not None:
            w[override[0]] = override[1]
        nf = self.spec.num_feat
        if part == HEAD:
            return self.table.head_ms(w.get("fusion") if self.spec.bidirectional else None, w["upconv1"],
                                      w["upconv2"], w["conv_hr"], nf)
        return self.table.block_ms(w[f"{part}.in"], w[f"{part}.mid"], w[f"{part}.out"], nf)

    def total_ms(self) -> float:
        return self.table.fixed_ms + sum(self.part_ms(p) for p in set(self.part.values()))


def _floors(scores: UnitScores, min_keep: int, overrides: Mapping[str, LayerOverride]) -> dict[str, int]:
    out = {}
    for layer in scores.layers:
        o = overrides.get(layer.name)
        floor = max(1, min_keep)
        if o is not None and o.locked:
            floor = layer.size
        elif o is not None and o.max_ratio is not None:
            floor = max(floor, layer.size - int(math.floor(layer.size * o.max_ratio + 1e-9)))
        out[layer.name] = min(floor, layer.size)
    return out


def plan_for_latency(scores: UnitScores, table: LatencyTable, target_ms: float, *, min_keep: int = 1,
                     overrides: Mapping[str, LayerOverride] | None = None,
                     frame_size: tuple[int, int] | None = None) -> Plan:
    """The plan predicted to run at ``target_ms`` per frame or faster; PlanError naming the fastest reachable."""
    if not (isinstance(target_ms, (int, float)) and math.isfinite(target_ms) and target_ms > 0):
        raise PlanError(f"the latency target must be a positive number of ms per frame, got {target_ms!r}")
    overrides = dict(overrides or {})
    PlanSettings.from_overrides(0.0, scores.criterion, min_keep, 1, overrides).check_layers(
        l.name for l in scores.layers)
    if scores.spec.num_feat != table.num_feat or scores.spec.bidirectional != table.bidirectional:
        raise PlanError("the latency table was measured for a network of another width or variant")
    size = tuple(frame_size or table.size)
    state = _Widths(scores, table)
    floors = _floors(scores, min_keep, overrides)
    ordered = {l.name: np.sort(s) for l, s in zip(scores.layers, scores.per_layer)}
    sizes = {l.name: l.size for l in scores.layers}
    dense_ms = state.total_ms()

    def next_width(name: str) -> int | None:
        w = state.width[name]
        step = _step(sizes[name])
        # Off-grid layers (a floor or cap not on the grid) step to the grid first.
        nw = (w - step) if w % step == 0 else (w // step) * step
        return nw if nw >= max(floors[name], 1) else None

    def entry(name: str) -> tuple[float, str, int] | None:
        nw = next_width(name)
        if nw is None:
            return None
        w = state.width[name]
        part = state.part[name]
        saved = state.part_ms(part) - state.part_ms(part, (name, nw))
        lost = float(ordered[name][sizes[name] - w: sizes[name] - nw].sum())
        # Steps that save nothing measurable go last, cheapest first.
        priority = lost / saved if saved > 1e-9 else 1e12 + lost
        return priority, name, nw

    heap = [e for e in (entry(n) for n in state.width) if e is not None]
    heapq.heapify(heap)
    current = dense_ms
    while current > target_ms and heap:
        _, name, nw = heapq.heappop(heap)
        if next_width(name) != nw:
            continue                       # stale: the layer moved since this entry was made
        part = state.part[name]
        before = state.part_ms(part)
        state.width[name] = nw
        current += state.part_ms(part) - before
        # Every layer of the same part now saves a different amount per step.
        for other in [n for n, p in state.part.items() if p == part]:
            e = entry(other)
            if e is not None:
                heapq.heappush(heap, e)
    if current > target_ms:
        raise PlanError(f"no plan reaches {target_ms:.0f} ms per frame ({fps(target_ms):.2f} fps) at "
                        f"{size[0]}x{size[1]} on {table.device}: the fastest reachable is {current:.0f} ms per frame "
                        f"({fps(current):.2f} fps), of which {table.fixed_ms:.0f} ms is SpyNet and the parts no "
                        f"plan changes")
    widths = {n: w for n, w in state.width.items() if w != sizes[n]}
    plan = make_plan(scores, 0.0, min_keep=min_keep, overrides=overrides, frame_size=size, widths=widths or None)
    note = (f"widths chosen for {target_ms:.0f} ms per frame on {table.device}: predicted {current:.0f} ms "
            f"({fps(current):.2f} fps), dense {dense_ms:.0f} ms")
    return replace(plan, notes=(*plan.notes, note))


def predicted_ms(plan: Plan, table: LatencyTable) -> float:
    """ms per frame the table predicts for the plan's pruned network."""
    return table.predict_ms(plan.spec_after)


def fastest_ms(scores: UnitScores, table: LatencyTable, *, min_keep: int = 1,
               overrides: Mapping[str, LayerOverride] | None = None) -> float:
    """The prediction for every layer at its floor: no target below this can be met."""
    state = _Widths(scores, table)
    floors = _floors(scores, min_keep, dict(overrides or {}))
    for name, size in list(state.width.items()):
        step = _step(size)
        state.width[name] = min(size, -(-floors[name] // step) * step)
    return state.total_ms()
