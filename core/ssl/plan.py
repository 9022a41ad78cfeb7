"""Plan: which units of every layer survive a global pruning ratio — an immutable, cheap value.

One global ranking over all units (not a per-layer ratio): the ``round(N·p)`` lowest-scoring units are pruned,
subject to per-layer floors (keep at least ``min_keep``), locks and ratio caps. The slider recomputes a plan on
every move, so everything here is vectorised over precomputed ``UnitScores``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Mapping

import numpy as np

from ..errors import CheckpointError, PlanError
from ..models.spec import ArchSpec, BlockSpec
from ..profile.cost import param_count
from ..profile.macs import frame_macs
from .scores import UnitScores
from .settings import LayerOverride, PlanSettings, unknown_layer_message

MAX_RATIO = 0.99
# A global cut leaves some layers a few channels wide, and oneDNN runs convs whose output width is not a multiple
# of 16 at 40-70 % of its MAC rate (AVX2 registers hold 8 floats; kernels block outputs by 16). With widths
# rounded to 16, a pruned network runs at the dense network's MAC rate: 0.89-0.90x the MAC ratio at ratio 0.5 on a
# CPU against 0.77x for exact widths (bench_prune.py). Front ends default to it; ``make_plan`` itself defaults
# to the paper's exact global cut (align=1).
RECOMMENDED_ALIGN = 16


@dataclass(frozen=True)
class LayerPlan:
    name: str
    group: str
    kind: str
    total: int
    kept: tuple[int, ...]          # indices of surviving units, ascending
    scores: np.ndarray = field(repr=False, compare=False)
    limited: bool = False          # a floor, lock or cap stopped the global ranking here

    @property
    def n_kept(self) -> int:
        return len(self.kept)

    @property
    def ratio(self) -> float:
        return 1.0 - self.n_kept / self.total

    @property
    def pruned(self) -> tuple[int, ...]:
        keep = set(self.kept)
        return tuple(i for i in range(self.total) if i not in keep)


@dataclass(frozen=True)
class Totals:
    params: int                    # without SpyNet (the paper's convention)
    params_with_spynet: int
    macs: int                      # per LR frame, without SpyNet
    macs_spynet: int


@dataclass(frozen=True)
class Plan:
    requested_ratio: float
    criterion: str
    layers: tuple[LayerPlan, ...]
    threshold: float               # highest score among pruned units (nan when nothing is pruned)
    before: Totals
    after: Totals
    spec_before: ArchSpec = field(repr=False)
    spec_after: ArchSpec = field(repr=False)
    frame_size: tuple[int, int] = (180, 320)
    notes: tuple[str, ...] = ()
    settings: PlanSettings | None = None   # what made it (None only for the uniform baseline)

    @property
    def units_total(self) -> int:
        return sum(l.total for l in self.layers)

    @property
    def units_pruned(self) -> int:
        return sum(l.total - l.n_kept for l in self.layers)

    @property
    def achieved_ratio(self) -> float:
        return self.units_pruned / self.units_total

    @property
    def mac_ratio(self) -> float:
        """Dense MACs / pruned MACs (network without SpyNet): the speed-up the arithmetic promises."""
        return self.before.macs / self.after.macs

    def layer(self, name: str) -> LayerPlan:
        for l in self.layers:
            if l.name == name:
                return l
        raise KeyError(name)

    def cut_as(self, pruned: Mapping[str, Any], scores: UnitScores | None = None) -> "Plan":
        """This plan with each layer pruning exactly ``pruned[name]`` (the units SIR regularized, which a resumed
        run reads back from its state) and, when given, ``scores`` shown instead (e.g. |γ| after SIR).

        Settings and criterion stay: they say how the units were chosen.
        """
        by_name = {} if scores is None else {l.name: s for l, s in zip(scores.layers, scores.per_layer)}
        layers, cut = [], []
        for l in self.layers:
            drop = {int(i) for i in pruned.get(l.name, ())}
            kept = tuple(i for i in range(l.total) if i not in drop)
            if not kept:
                raise PlanError(f"layer {l.name!r} would lose every unit")
            s = by_name.get(l.name, l.scores)
            layers.append(replace(l, kept=kept, scores=s))
            cut.extend(float(s[i]) for i in drop)
        spec_after = apply_to_spec(self.spec_before, layers)
        return replace(self, layers=tuple(layers), threshold=max(cut) if cut else float("nan"),
                       after=_totals(spec_after, self.frame_size), spec_after=spec_after)

    def kept_units(self) -> dict[str, tuple[int, int]]:
        """(kept, total) units of every prunable layer, in network order."""
        return {l.name: (l.n_kept, l.total) for l in self.layers}

    def to_json(self, scores: bool = False) -> dict:
        """Everything a report needs, JSON-able; per-unit scores only when asked (they are large).

        With the settings and the dense spec included, ``plan_from_json`` rebuilds an equal Plan.
        """
        return {"requested_ratio": self.requested_ratio, "achieved_ratio": self.achieved_ratio,
                "criterion": self.criterion, "threshold": None if math.isnan(self.threshold) else self.threshold,
                "frame_size": list(self.frame_size), "notes": list(self.notes),
                "settings": None if self.settings is None else self.settings.to_json(),
                "spec": self.spec_before.to_json(),
                "before": vars(self.before), "after": vars(self.after),
                "layers": [{"name": l.name, "group": l.group, "kind": l.kind, "total": l.total,
                            "kept": l.n_kept, "ratio": l.ratio, "limited": l.limited,
                            "kept_indices": list(l.kept),
                            **({"scores": [float(v) for v in l.scores]} if scores else {})}
                           for l in self.layers]}


def _totals(spec: ArchSpec, size: tuple[int, int]) -> Totals:
    macs, spy = frame_macs(spec, *size)
    return Totals(param_count(spec), param_count(spec, include_spynet=True), macs, spy)


def plan_with(scores: UnitScores, settings: PlanSettings, frame_size: tuple[int, int] = (180, 320)) -> Plan:
    """The plan ``settings`` describe, on ``scores`` (which must be of the settings' criterion)."""
    if scores.criterion != settings.criterion:
        raise PlanError(f"the plan asks for criterion {settings.criterion!r} but the scores are {scores.criterion!r}")
    return make_plan(scores, settings.ratio, min_keep=settings.min_keep, align=settings.align,
                     overrides=settings.overrides, frame_size=frame_size, widths=dict(settings.widths) or None)


def check_ratio(ratio: float) -> None:
    """A ``PlanError`` unless ``ratio`` is a pruning ratio a plan can have."""
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not math.isfinite(ratio):
        raise PlanError(f"pruning ratio must be a number, got {ratio!r}")
    if not 0.0 <= ratio < 1.0:
        raise PlanError(f"pruning ratio {ratio} is outside [0, 1)")
    if ratio > MAX_RATIO:
        raise PlanError(f"pruning ratio {ratio} is above the maximum {MAX_RATIO}")


def make_plan(scores: UnitScores, ratio: float, *, min_keep: int = 1, align: int = 1,
              overrides: Mapping[str, LayerOverride] | None = None,
              frame_size: tuple[int, int] = (180, 320), widths: Mapping[str, int] | None = None) -> Plan:
    """Prune the globally lowest-scoring ``round(N·ratio)`` units, respecting floors, locks and caps.

    ``align`` > 1 rounds each layer's kept count to a multiple of ``align`` (nearest, within the layer),
    keeping that layer's best-scoring units: odd widths waste much of the MAC saving on real hardware.
    ``widths`` instead fixes how many units each listed layer keeps (its best-scoring ones), as a latency
    target's planner chooses them; ``ratio`` then only records what was asked.
    """
    check_ratio(ratio)
    if min_keep < 1:
        raise PlanError(f"min_keep must be at least 1, got {min_keep}")
    if align < 1:
        raise PlanError(f"align must be at least 1, got {align}")
    overrides = dict(overrides or {})
    names = [l.name for l in scores.layers]
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise PlanError(unknown_layer_message(unknown[0], names))
    settings = PlanSettings.from_overrides(ratio, scores.criterion, min_keep, align, overrides)
    if widths:
        return _width_plan(scores, settings, dict(widths), frame_size)

    sizes = np.array([l.size for l in scores.layers])
    cap = np.maximum(sizes - min_keep, 0)
    for i, name in enumerate(names):
        o = overrides.get(name)
        if o is None:
            continue
        if o.locked:
            cap[i] = 0
        elif o.max_ratio is not None:
            if not 0.0 <= o.max_ratio <= 1.0:
                raise PlanError(f"max ratio {o.max_ratio} for layer {name!r} is outside [0, 1]")
            cap[i] = min(cap[i], int(math.floor(sizes[i] * o.max_ratio + 1e-9)))

    n_prune = int(round(scores.n_units * ratio))
    layer_sorted = scores.layer_of[scores.order]
    eligible = scores.rank_in_layer[scores.order] < cap[layer_sorted]
    chosen_sorted = eligible & (np.cumsum(eligible) <= n_prune)
    pruned_mask = np.zeros(scores.n_units, dtype=bool)
    pruned_mask[scores.order[chosen_sorted]] = True
    # Layers where the constraints bound: the unconstrained ranking would have pruned more there.
    free = np.bincount(layer_sorted[:n_prune], minlength=len(names))
    got = np.bincount(scores.layer_of[pruned_mask], minlength=len(names))
    limited = free > got

    flat = scores.flat
    layers = []
    for i, layer in enumerate(scores.layers):
        start = scores.offsets[i]
        keep_mask = ~pruned_mask[start:start + sizes[i]]
        if align > 1:
            keep_mask = _aligned(keep_mask, scores.per_layer[i], align, sizes[i] - cap[i])
        layers.append(LayerPlan(layer.name, layer.group, layer.kind, int(sizes[i]),
                                tuple(int(j) for j in np.flatnonzero(keep_mask)), scores.per_layer[i],
                                bool(limited[i])))
    threshold = float(flat[pruned_mask].max()) if pruned_mask.any() else float("nan")
    notes = []
    n_limited = int(limited.sum())
    if n_limited:
        notes.append(f"{n_limited} layer(s) kept more than the global ranking asked for (floor of {min_keep}, "
                     f"locks or caps); their units were pruned elsewhere")
    if pruned_mask.sum() < n_prune:
        notes.append(f"only {int(pruned_mask.sum())} of the {n_prune} requested units could be pruned")
    spec_after = apply_to_spec(scores.spec, layers)
    return Plan(float(ratio), scores.criterion, tuple(layers), threshold,
                _totals(scores.spec, frame_size), _totals(spec_after, frame_size),
                scores.spec, spec_after, tuple(frame_size), tuple(notes), settings)


def _width_plan(scores: UnitScores, settings: PlanSettings, widths: dict[str, int],
                frame_size: tuple[int, int]) -> Plan:
    """Each layer keeps its ``widths[name]`` best-scoring units (all of them when unlisted)."""
    names = [l.name for l in scores.layers]
    settings = replace(settings, widths=tuple(widths.items()))
    settings.check_layers(names)
    overrides = settings.overrides
    layers, cut = [], []
    for layer, s in zip(scores.layers, scores.per_layer):
        n = widths.get(layer.name, layer.size)
        o = overrides.get(layer.name)
        floor = max(settings.min_keep, layer.size if o is not None and o.locked else 0,
                    layer.size - int(math.floor(layer.size * o.max_ratio + 1e-9))
                    if o is not None and o.max_ratio is not None else 0)
        if not min(floor, layer.size) <= n <= layer.size:
            raise PlanError(f"layer {layer.name!r}: width {n} is outside {min(floor, layer.size)}..{layer.size} "
                            f"(its floor, lock or cap)")
        order = np.argsort(-s, kind="stable")
        kept = tuple(int(j) for j in np.sort(order[:n]))
        cut.extend(float(v) for v in s[order[n:]])
        layers.append(LayerPlan(layer.name, layer.group, layer.kind, layer.size, kept, s))
    spec_after = apply_to_spec(scores.spec, layers)
    plan = Plan(0.0, scores.criterion, tuple(layers), max(cut) if cut else float("nan"),
                _totals(scores.spec, frame_size), _totals(spec_after, frame_size), scores.spec, spec_after,
                tuple(frame_size), (), settings)
    return replace(plan, requested_ratio=plan.achieved_ratio,
                   settings=replace(settings, ratio=round(plan.achieved_ratio, 6)))


def plan_from_json(data: Mapping[str, Any]) -> Plan:
    """The Plan that ``Plan.to_json`` wrote (as kept in a pruned model file's meta); PlanError if damaged.

    Without stored scores (``to_json(scores=False)``) every unit scores 0; kept indices, limits, totals,
    settings and both specs come back exactly.
    """
    try:
        spec = ArchSpec.from_json(data["spec"])
        layers = []
        for item in data["layers"]:
            total = int(item["total"])
            kept = tuple(int(i) for i in item["kept_indices"])
            if not kept or len(set(kept)) != len(kept) or any(not 0 <= i < total for i in kept):
                raise ValueError(f"layer {item['name']}: kept indices out of range")
            s = np.asarray(item.get("scores") or np.zeros(total), dtype=np.float64)
            s.setflags(write=False)
            layers.append(LayerPlan(str(item["name"]), str(item["group"]), str(item["kind"]), total,
                                    tuple(sorted(kept)), s, bool(item["limited"])))
        settings = None if data.get("settings") is None else PlanSettings.from_json(data["settings"])
        threshold = float("nan") if data.get("threshold") is None else float(data["threshold"])
        size = tuple(int(v) for v in data["frame_size"])
        spec_after = apply_to_spec(spec, layers)
        return Plan(float(data["requested_ratio"]), str(data["criterion"]), tuple(layers), threshold,
                    Totals(**{k: int(v) for k, v in data["before"].items()}),
                    Totals(**{k: int(v) for k, v in data["after"].items()}),
                    spec, spec_after, size, tuple(str(n) for n in data.get("notes", ())), settings)
    except PlanError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise PlanError(f"the stored plan is damaged or from an older version ({e})") from None


def stored_plan(meta: Mapping[str, Any], where: object) -> Plan | None:
    """The plan a model file's ``meta`` holds (None when it holds none), read as ``plan_from_json`` reads it.

    Why: ``info`` and ``export --format h5`` walked the stored plan as they found it, so an edited or damaged one
    ended in a KeyError or AttributeError traceback; now it is one ``CheckpointError`` line naming the file.
    """
    data = meta.get("plan")
    if data is None:
        return None
    if not isinstance(data, Mapping):
        raise CheckpointError(f"{where}: the plan stored in its metadata is damaged (a {type(data).__name__}, not a "
                              f"plan)")
    try:
        return plan_from_json(data)
    except PlanError as e:
        raise CheckpointError(f"{where}: {e}") from None


def make_uniform_plan(scores: UnitScores, layer_ratio: float, *, frame_size: tuple[int, int] = (180, 320)) -> Plan:
    """The per-layer baseline: every layer prunes the same fraction of its own lowest-scoring units."""
    if not 0.0 <= layer_ratio < 1.0:
        raise PlanError(f"pruning ratio {layer_ratio} is outside [0, 1)")
    layers = []
    for layer, layer_scores in zip(scores.layers, scores.per_layer):
        n_prune = min(int(round(layer.size * layer_ratio)), layer.size - 1)
        kept = np.sort(np.argsort(layer_scores, kind="stable")[n_prune:])
        layers.append(LayerPlan(layer.name, layer.group, layer.kind, layer.size,
                                tuple(int(j) for j in kept), layer_scores))
    pruned = [s[np.isin(np.arange(len(s)), l.kept, invert=True)] for l, s in zip(layers, scores.per_layer)]
    pruned_scores = np.concatenate(pruned)
    threshold = float(pruned_scores.max()) if pruned_scores.size else float("nan")
    spec_after = apply_to_spec(scores.spec, layers)
    return Plan(float(layer_ratio), f"{scores.criterion}-uniform", tuple(layers), threshold,
                _totals(scores.spec, frame_size), _totals(spec_after, frame_size),
                scores.spec, spec_after, tuple(frame_size))


def _aligned(keep_mask: np.ndarray, layer_scores: np.ndarray, align: int, at_least: int) -> np.ndarray:
    n_keep = int(keep_mask.sum())
    total = keep_mask.size
    target = min(total, max(align * int(round(n_keep / align)), align, at_least))
    if target == n_keep:
        return keep_mask
    best = np.argsort(-layer_scores, kind="stable")[:target]
    out = np.zeros(total, dtype=bool)
    out[best] = True
    return out


def apply_to_spec(spec: ArchSpec, layers: list[LayerPlan] | tuple[LayerPlan, ...]) -> ArchSpec:
    """The ArchSpec of the network that keeps ``layers``' units (indices mapped to stream channels)."""
    by_name = {l.name: l for l in layers}

    def stream(current: tuple[int, ...] | None, kept: tuple[int, ...]) -> tuple[int, ...] | None:
        channels = current if current is not None else tuple(range(spec.num_feat))
        chosen = tuple(channels[i] for i in kept)
        return None if chosen == tuple(range(spec.num_feat)) else chosen

    def trunk(name: str) -> tuple[BlockSpec, ...]:
        blocks = []
        for k, b in enumerate(spec.trunk_blocks(name)):
            blocks.append(BlockSpec(mid=by_name[f"{name}.{k}.mid"].n_kept,
                                    reads=stream(b.reads, by_name[f"{name}.{k}.in"].kept),
                                    writes=stream(b.writes, by_name[f"{name}.{k}.out"].kept)))
        return tuple(blocks)

    return spec.with_(forward_blocks=trunk("forward"),
                      backward_blocks=trunk("backward") if spec.bidirectional else (),
                      fusion=by_name["fusion"].n_kept if spec.bidirectional else spec.fusion,
                      upconv1=by_name["upconv1"].n_kept, upconv2=by_name["upconv2"].n_kept,
                      conv_hr=by_name["conv_hr"].n_kept)
