"""Structured Sparsity Learning: scale factors, unit scores, global plans, SIR and physical pruning."""
from .plan import RECOMMENDED_ALIGN, LayerOverride, LayerPlan, Plan, Totals, make_plan, make_uniform_plan
from .prune import prune_to_plan
from .scale import attach_scale_factors, fold_scale_factors, mask_units, scale_factors
from .scores import CRITERIA, UnitScores, compute_scores
from .sir import SIR, SIRSettings, SIRStats

__all__ = ["CRITERIA", "RECOMMENDED_ALIGN", "LayerOverride", "LayerPlan", "Plan", "SIR", "SIRSettings", "SIRStats", "Totals",
           "UnitScores", "attach_scale_factors", "compute_scores", "fold_scale_factors", "make_plan", "make_uniform_plan",
           "mask_units", "prune_to_plan", "scale_factors"]
