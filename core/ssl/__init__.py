"""Structured Sparsity Learning: scale factors, unit scores, global plans, SIR and physical pruning."""
from .criteria import CRITERIA, DEFAULT_CRITERION, REGISTRY, Criterion, get_criterion
from .plan import (RECOMMENDED_ALIGN, LayerPlan, Plan, Totals, make_plan, make_uniform_plan, plan_from_json,
                   plan_with)
from .prune import prune_to_plan
from .scale import attach_scale_factors, fold_scale_factors, mask_units, scale_factors
from .scores import UnitScores, compute_scores, scores_on, unusable_reason
from .settings import LayerOverride, PlanSettings
from .sir import SIR, SIRSettings, SIRStats

__all__ = ["CRITERIA", "DEFAULT_CRITERION", "RECOMMENDED_ALIGN", "REGISTRY", "Criterion", "LayerOverride",
           "LayerPlan", "Plan", "PlanSettings", "SIR", "SIRSettings", "SIRStats", "Totals", "UnitScores",
           "attach_scale_factors", "compute_scores", "fold_scale_factors", "get_criterion", "make_plan",
           "make_uniform_plan", "mask_units", "plan_from_json", "plan_with", "prune_to_plan", "scale_factors",
           "scores_on", "unusable_reason"]
