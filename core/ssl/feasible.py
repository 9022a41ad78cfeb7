"""Whether a plan's settings can cut a network at all, decided from its architecture alone.

Why: layer names, fixed widths, the floor (``min_keep``) and the ratio decide, whatever the units score, whether a
plan is possible and whether it prunes anything. ``train`` used to find out inside its cutting stage, after
``dense.pth`` was written (which then blocked a corrected restart in that folder), and ``prune`` only after a
criterion measured on frames had run the network. Checked here first, on blank scores, nothing runs or is written.
Only ``align``'s rounding depends on the scores; the stage itself still refuses a plan it rounds to nothing.
"""
from __future__ import annotations

from dataclasses import replace

from ..errors import PlanError
from ..models.spec import ArchSpec
from .plan import check_ratio, plan_with
from .scores import blank_scores
from .settings import PlanSettings


def check_feasible(spec: ArchSpec, settings: PlanSettings) -> None:
    """A one-line ``PlanError`` unless ``settings`` make a plan for a ``spec`` network that prunes some unit."""
    check_ratio(settings.ratio)
    plan = plan_with(blank_scores(spec, settings.criterion), replace(settings, align=1))
    if plan.units_pruned:
        return
    if settings.widths:
        raise PlanError("the plan's widths keep every unit of every layer: it prunes nothing")
    asked = round(plan.units_total * settings.ratio)
    if asked == 0:
        raise PlanError(f"ratio {settings.ratio:g} of this network's {plan.units_total} prunable units is no unit: "
                        f"it prunes nothing (one unit is a ratio of {1 / plan.units_total:.3g})")
    widest = max(layer.total for layer in plan.layers)
    raise PlanError(f"min_keep {settings.min_keep}, locks and caps leave no unit any layer may lose (the widest "
                    f"layer has {widest} units): the plan prunes nothing")
