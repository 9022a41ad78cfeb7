"""Studies that help pick a plan: per-group sensitivity and ratio sweeps (Pareto fronts), saved as plain data."""
from .clip import StudyClip, load_study_clip
from .results import (ClipInfo, GroupSensitivity, SensitivityResult, StudyError, SweepPoint, SweepResult,
                      load_study, pareto_front, save_study)
from .sensitivity import GRANULARITIES, layer_groups, run_sensitivity
from .sweep import DEFAULT_RATIOS, parse_ratios, run_sweep
from .training import Budget

__all__ = ["Budget", "ClipInfo", "DEFAULT_RATIOS", "GRANULARITIES", "GroupSensitivity", "SensitivityResult",
           "StudyClip", "StudyError", "SweepPoint", "SweepResult", "layer_groups", "load_study", "load_study_clip",
           "pareto_front", "parse_ratios", "run_sensitivity", "run_sweep", "save_study"]
