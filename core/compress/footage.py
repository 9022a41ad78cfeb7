"""The user's footage, split once: the first frames calibrate, the frames after them and other clips judge.

Why one owner: a figure measured on frames the calibration read says nothing about the next minute of the same
video, which is what a deployed model sees. Every stage of ``compress`` (the criterion, reconstruction,
distillation, int8 calibration, the guard) reads ``calibration`` only; ``judged`` holds frames none of them read.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import ClipError
from ..io.source import open_source

MIN_CALIB_FRAMES = 3      # the recurrent state must build up over a few steps (reconstruction, int8)
MIN_JUDGED_FRAMES = 2     # BasicVSR needs two frames; fewer later frames judge nothing
MIN_SIDE = 32             # int8 calibration's floor (core.deploy.quantize.MIN_CALIB_SIDE)
DEFAULT_CALIB_FRAMES = 10
DEFAULT_JUDGED_FRAMES = 10


@dataclass(frozen=True)
class JudgedClip:
    """Frames no stage of ``compress`` calibrated on, and where they come from."""

    name: str
    kind: str                      # "later frames" (of the calibration clip) or "other clip"
    first: int                     # index of its first frame in its source
    frames: np.ndarray             # uint8 (T, h, w, 3)


@dataclass(frozen=True)
class Footage:
    """The calibration frames (the first ``len(calibration)`` frames of the first clip) and the judged clips."""

    source: str
    calibration: np.ndarray        # uint8 (T, h, w, 3)
    judged: tuple[JudgedClip, ...]

    @property
    def size(self) -> tuple[int, int]:
        return tuple(self.calibration.shape[1:3])

    def to_json(self) -> dict:
        return {"source": self.source, "calibration_frames": [0, len(self.calibration)],
                "size": list(self.size),
                "judged": [{"name": j.name, "kind": j.kind, "frames": [j.first, j.first + len(j.frames)],
                            "size": list(j.frames.shape[1:3])} for j in self.judged]}


def _read(path: str | Path, count: int) -> tuple[str, np.ndarray]:
    """(the path as the user gave it, its first ``count`` frames)."""
    frames = list(open_source(path, max_frames=count))
    if not frames:
        raise ClipError(f"footage {path} holds no frames")
    return str(path), np.stack(frames)


def _check_side(name: str, frames: np.ndarray) -> None:
    h, w = frames.shape[1:3]
    if min(h, w) < MIN_SIDE:
        raise ClipError(f"footage {name} is too small: {h}x{w} frames (HxW); compress needs at least "
                        f"{MIN_SIDE}x{MIN_SIDE} LR frames")


def read_footage(paths: Sequence[str | Path], calib_frames: int = DEFAULT_CALIB_FRAMES,
                 judged_frames: int = DEFAULT_JUDGED_FRAMES) -> Footage:
    """Read and split the footage before any work; one-line ``ClipError`` for a clip that cannot serve.

    The first clip gives ``calib_frames`` calibration frames and, after them, up to ``judged_frames`` later
    frames to judge on (at least ``MIN_JUDGED_FRAMES``). Every further clip is judged on its first
    ``judged_frames`` frames and never calibrated on.
    """
    if not paths:
        raise ClipError("compress needs footage: give --footage CLIP (a video or a folder of frames)")
    if calib_frames < MIN_CALIB_FRAMES:
        raise ClipError(f"--calib-frames must be at least {MIN_CALIB_FRAMES}, got {calib_frames}")
    if judged_frames < MIN_JUDGED_FRAMES:
        raise ClipError(f"--judge-frames must be at least {MIN_JUDGED_FRAMES}, got {judged_frames}")
    first = split_frames(*_read(paths[0], calib_frames + judged_frames), calib_frames, judged_frames)
    judged = list(first.judged)
    for path in paths[1:]:
        other, clip = _read(path, judged_frames)
        _check_side(other, clip)
        if len(clip) < MIN_JUDGED_FRAMES:
            raise ClipError(f"footage {other} is too short: {len(clip)} frame(s), at least {MIN_JUDGED_FRAMES} "
                            f"are judged")
        judged.append(JudgedClip(other, "other clip", 0, clip))
    return Footage(first.source, first.calibration, tuple(judged))


def split_frames(name: str, frames: np.ndarray, calib_frames: int = DEFAULT_CALIB_FRAMES,
                 judged_frames: int = DEFAULT_JUDGED_FRAMES) -> Footage:
    """One clip's frames (uint8 (T, h, w, 3), already read: the app's current clip) split as ``read_footage``
    splits the first clip; one-line ``ClipError`` for a clip that cannot serve."""
    _check_side(name, frames)
    if len(frames) < calib_frames + MIN_JUDGED_FRAMES:
        raise ClipError(f"footage {name} is too short: {len(frames)} frame(s); compress calibrates on the first "
                        f"{calib_frames} and judges on at least {MIN_JUDGED_FRAMES} after them "
                        f"({calib_frames + MIN_JUDGED_FRAMES} in all; fewer with --calib-frames)")
    frames = frames[:calib_frames + judged_frames]
    return Footage(name, np.ascontiguousarray(frames[:calib_frames]),
                   (JudgedClip(name, "later frames", calib_frames, np.ascontiguousarray(frames[calib_frames:])),))
