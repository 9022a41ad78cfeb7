"""The cut Prune already reconstructed, handed to Train's prune stage instead of being made again.

Why: a person pressed “Prune + reconstruct” (407 s), then started Train with the prune stage, and the run measured,
cut and reconstructed the very same plan of the very same network again. The run keeps Prune's cut when it is
that plan (the Train step follows the Prune step) of the network the run starts from, and reconstruction is on.
"""
from __future__ import annotations

import copy
from pathlib import Path

from core.errors import UserError
from core.io.weights import weights_file
from core.train.config import TrainConfig
from core.train.pipeline import GivenCut

from .current_plan import pruned_meta
from .state import AppState


def reusable_cut(state: AppState, cfg: TrainConfig, follows_prune: bool) -> tuple[GivenCut, str] | None:
    """Prune's reconstructed cut for a run of ``cfg`` (a private copy) and the clip it was fitted on, or None
    when the run would make another cut (another plan, start network or setting)."""
    loaded, plan = state.model, state.plan
    if not (follows_prune and "prune" in cfg.stages and cfg.prune.reconstruct) or loaded is None or plan is None:
        return None
    recovery = state.current.recovery_for(loaded.model, plan)
    if recovery is None or not _same_file(cfg.model.weights, loaded.path):
        return None
    return GivenCut(plan, copy.deepcopy(recovery.model), pruned_meta(recovery)), recovery.clip


def _same_file(weights: str | None, path: Path) -> bool:
    """``model.weights`` names the file the app loaded as its dense network."""
    try:
        return weights is not None and weights_file(weights, "model.weights").resolve() == Path(path).resolve()
    except UserError:            # an official name not installed: the run refuses it in its own words
        return False
