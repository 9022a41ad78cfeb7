"""The mildest network that reaches a speed on this machine: a ladder of recipes, planned by the latency table.

Why a ladder and not one plan: every cut costs quality, and int8 and a half-resolution flow buy speed for less.
So the rungs go from the least change to the most, and the first rung predicted to reach the target is built:
1. the dense network in int8;  2. the same with SpyNet at half resolution;  3. the hidden stream kept whole
(only each block's inner filters and the head cut);  4. the same with half flow;  5. the stream cut too;  6. the
same with half flow. A rung whose file the int8 guard refuses (half flow can cost more than the budget on some
footage) gives way to the next one.
The prediction is the fp32 latency table, scaled to the dense network's time measured now (a table measured on
a busier or quieter day predicts the same ratios, not the same milliseconds), divided by the int8 gain measured on
this CPU; each plan is timed as an int8 probe before it is built (``core.deploy.timing_probe``), and a miss
re-plans with the gain it really had (``corrected_gain``).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from typing import Mapping

import torch

from ..errors import PlanError
from ..models.basicvsr import BasicVSR
from ..models.spec import ArchSpec
from ..profile.latency import LatencyTable
from ..ssl import LayerOverride, Plan, UnitScores
from ..ssl.target import fastest_ms, plan_for_latency
from ..ssl.units import stream_layer_names

NO_CUT, KEEP_STREAM, CUT_STREAM = "no cut", "stream kept", "stream cut"


@dataclass(frozen=True)
class Rung:
    """One recipe of the ladder."""

    cut: str            # NO_CUT, KEEP_STREAM or CUT_STREAM
    flow: str           # SpyNet's resolution in the file

    @property
    def name(self) -> str:
        return f"{self.cut}, int8, {self.flow} flow"


LADDER = tuple(Rung(cut, flow) for cut in (NO_CUT, KEEP_STREAM, CUT_STREAM) for flow in ("full", "half"))


def next_rung(rung: Rung) -> Rung | None:
    """The rung after ``rung`` (None after the last)."""
    i = LADDER.index(rung) + 1
    return LADDER[i] if i < len(LADDER) else None


@dataclass(frozen=True)
class Machine:
    """What planning knows of this machine: the latency table, how its milliseconds compare with the dense
    network's measured now (``scale``: measured / predicted), SpyNet's saving at half resolution (measured) and
    the dense network's marginal ms per frame the plan started from."""

    table: LatencyTable
    scale: float
    flow_saving_ms: float
    dense_ms: float

    def fp32_ms(self, rung: Rung, spec: ArchSpec) -> float:
        """Predicted PyTorch fp32 ms per frame of a network of ``spec`` at the rung's flow, in measured ms."""
        saving = self.flow_saving_ms if rung.flow == "half" else 0.0
        return self.table.predict_ms(spec) * self.scale - saving

    def table_for(self, rung: Rung) -> LatencyTable:
        """The table with the rung's SpyNet (its fixed part less the half-flow saving, in table units)."""
        if rung.flow == "full":
            return self.table
        return replace(self.table, fixed_ms=max(self.table.fixed_ms - self.flow_saving_ms / self.scale, 0.0))


@dataclass(frozen=True)
class SpeedPlan:
    """A rung and its plan (None for no cut), with what the table predicts for its int8 file."""

    rung: Rung
    plan: Plan | None
    predicted_fp32_ms: float       # measured-ms units (``Machine.fp32_ms``)
    gain: float                    # int8 speed-up assumed over fp32

    @property
    def predicted_ms(self) -> float:
        return self.predicted_fp32_ms / self.gain


def flow_saving_ms(model: BasicVSR, size: tuple[int, int], repeats: int = 3) -> float:
    """ms per frame that SpyNet at half resolution saves at ``size`` (PyTorch, two flows per frame for the
    bidirectional network, one for -uni)."""
    g = torch.Generator().manual_seed(0)
    a, b = (torch.rand(1, 3, *size, generator=g) for _ in range(2))
    spynet = model.spynet
    previous = spynet.resolution
    best = {}
    try:
        with torch.no_grad():
            for flow in ("full", "half"):
                spynet.set_resolution(flow)
                spynet(a, b)
                times = []
                for _ in range(repeats):
                    start = time.perf_counter()
                    spynet(a, b)
                    times.append(time.perf_counter() - start)
                best[flow] = min(times)
    finally:
        spynet.set_resolution(previous)
    flows = 2 if model.spec.bidirectional else 1
    return max(best["full"] - best["half"], 0.0) * flows * 1e3


def _locks(scores: UnitScores) -> Mapping[str, LayerOverride]:
    return {name: LayerOverride(locked=True) for name in stream_layer_names(scores.spec)}


def plan_rung(rung: Rung, scores: UnitScores, machine: Machine, target_ms: float, gain: float) -> SpeedPlan | None:
    """The rung's plan predicted to reach ``target_ms`` (the int8 file's measured ms per frame), or None."""
    if rung.cut == NO_CUT:
        fp32 = machine.fp32_ms(rung, scores.spec)
        return SpeedPlan(rung, None, fp32, gain) if fp32 / gain <= target_ms else None
    overrides = _locks(scores) if rung.cut == KEEP_STREAM else {}
    table = machine.table_for(rung)
    try:
        plan = plan_for_latency(scores, table, target_ms * gain / machine.scale, overrides=overrides,
                                frame_size=table.size)
    except PlanError:
        return None
    return SpeedPlan(rung, plan, machine.fp32_ms(rung, plan.spec_after), gain)


def plan_for_speed(scores: UnitScores, machine: Machine, target_ms: float, gain: float,
                   after: Rung | None = None) -> SpeedPlan:
    """The first rung (from ``after`` on, when a built one missed: with the gain it really had, its prediction now
    misses too unless a deeper cut of the same kind reaches) predicted to reach ``target_ms``; a one-line
    ``PlanError`` naming the fastest reachable otherwise."""
    for rung in LADDER[0 if after is None else LADDER.index(after):]:
        found = plan_rung(rung, scores, machine, target_ms, gain)
        if found is not None:
            return found
    table = machine.table_for(LADDER[-1])
    fastest = fastest_ms(scores, table) * machine.scale / gain
    dense = machine.fp32_ms(LADDER[0], scores.spec)
    raise PlanError(f"no plan reaches {target_ms:.0f} ms per frame at {table.size[0]}x{table.size[1]} on this "
                    f"machine: the fastest reachable is about {fastest:.0f} ms per frame, "
                    f"{dense / fastest:.1f}x the dense network's {dense:.0f} ms (every layer at its floor, int8, "
                    f"half-resolution flow)")


def corrected_gain(built: SpeedPlan, speedup: float, dense_ms: float) -> float:
    """The int8 gain a timed network really had against its fp32 prediction (what the next plan assumes), from its
    measured ``speedup`` over the dense network rather than its milliseconds: measured beside the dense network,
    the ratio holds while the machine's pace drifts (the dense network's time moved 10 % between two builds)."""
    if not (speedup > 0 and math.isfinite(speedup)):
        return built.gain
    return built.predicted_fp32_ms * speedup / dense_ms
