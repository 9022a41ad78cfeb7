"""Tiny inputs for the study tests: a small random BasicVSR and a 3-frame crop of the demo clip with its GT."""
from __future__ import annotations

from core.io.demo import demo_clip_dir
from core.io.frames import read_clip
from core.study import StudyClip

from .helpers import tiny_model


def tiny_clip(gt: bool = True, frames: int = 3) -> StudyClip:
    """LR 12x16 crop of the demo clip (real frames) and the matching 48x64 GT crop."""
    demo = demo_clip_dir()
    lr = read_clip(demo / "BIx4", frames).frames[:, 20:32, 40:56]
    hr = read_clip(demo / "GT", frames).frames[:, 80:128, 160:224] if gt else None
    return StudyClip("demo-crop", lr, hr)


def study_model(seed: int = 0):
    return tiny_model("basicvsr", num_feat=8, num_block=2, seed=seed)
