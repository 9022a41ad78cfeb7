"""Unit scores for the Prune step: the weight criteria once per dense model, the ones measured on frames once per
(model, clip) — on the clip's first calibration frames, the frames reconstruction fits on; on the bundled demo
clip while no clip is open, as the command line does.

The frame-measured ones run in a child process (``app.child_work``): their per-layer hooks keep a job thread in
Python between small ops, and beside another job (a reconstruction) that kept the window's thread waiting for
the GIL for 175 ms at a time; the frames are read in the job's thread, the scores come back pickled."""
from __future__ import annotations

import numpy as np

from core.io.demo import DEMO_CLIP_NAME, demo_clip_dir
from core.data.calib import CALIB_FRAMES, read_calibration
from core.ssl import CRITERIA, REGISTRY, UnitScores, compute_scores, scores_on, unusable_reason

from .child_work import ChildWork
from .clips import ClipPair

FRAME_CRITERIA = tuple(c for c in CRITERIA if REGISTRY[c].needs_frames)


def weight_scores(model) -> dict[str, UnitScores]:
    """The criteria read from the weights alone, those that can rank ``model``'s units (no ``scale`` without SIR)."""
    return {c: compute_scores(model, c) for c in CRITERIA
            if c not in FRAME_CRITERIA and unusable_reason(model, c) is None}


def scoring_frames(clip: ClipPair | None) -> tuple[np.ndarray, str]:
    """The frames the frame-measured criteria are measured on, and their clip's name (the demo clip when None)."""
    if clip is None:
        return read_calibration(demo_clip_dir() / "BIx4", CALIB_FRAMES), DEMO_CLIP_NAME
    # the clip's own frames as they are: scores_on checks them (two frames are enough to measure)
    return np.stack([clip.lr[i] for i in range(min(len(clip.lr), CALIB_FRAMES))]), clip.name


def frame_scores(model, frames: np.ndarray, name: str) -> dict[str, UnitScores]:
    """The frame-measured criteria on ``frames`` (run in a child process by ``clip_scores``)."""
    return {c: scores_on(model, c, frames, name) for c in FRAME_CRITERIA}


def clip_scores(job, model, clip: ClipPair | None) -> dict[str, UnitScores]:
    """The frame-measured criteria on ``clip`` (the demo clip when None), for a job: measured in a child process;
    Cancel stops it at once."""
    if not FRAME_CRITERIA:
        return {}
    frames, name = scoring_frames(clip)
    with ChildWork(job) as child:
        return child.call(frame_scores, model, frames, name)
