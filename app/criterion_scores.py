"""Unit scores for the Prune step: the weight criteria once per dense model, the ones measured on frames once per
(model, clip) — on the clip's first calibration frames, the frames reconstruction fits on; on the bundled demo
clip while no clip is open, as the command line does."""
from __future__ import annotations

import numpy as np

from core.io.demo import DEMO_CLIP_NAME, demo_clip_dir
from core.data.calib import CALIB_FRAMES, read_calibration
from core.ssl import CRITERIA, REGISTRY, UnitScores, compute_scores, scores_on, unusable_reason

from .clips import ClipPair

FRAME_CRITERIA = tuple(c for c in CRITERIA if REGISTRY[c].needs_frames)


def weight_scores(model) -> dict[str, UnitScores]:
    """The criteria read from the weights alone, those that can rank ``model``'s units (no ``scale`` without SIR)."""
    return {c: compute_scores(model, c) for c in CRITERIA
            if c not in FRAME_CRITERIA and unusable_reason(model, c) is None}


def clip_scores(model, clip: ClipPair | None) -> dict[str, UnitScores]:
    """The frame-measured criteria on ``clip`` (the demo clip when None)."""
    if not FRAME_CRITERIA:
        return {}
    if clip is None:
        frames, name = read_calibration(demo_clip_dir() / "BIx4", CALIB_FRAMES), DEMO_CLIP_NAME
    else:
        # the clip's own frames as they are: scores_on checks them (two frames are enough to measure)
        frames, name = np.stack([clip.lr[i] for i in range(min(len(clip.lr), CALIB_FRAMES))]), clip.name
    return {c: scores_on(model, c, frames, name) for c in FRAME_CRITERIA}
