"""Calibration frames (reconstruction at the cut, int8 calibration): read from the user's clip, checked, bounded,
made a network input.

No ground truth is read or needed: the dense network's activations on these frames are the targets.
"""
from __future__ import annotations

import math
import os

import numpy as np
import torch

from ..errors import ClipError

MIN_FRAMES = 3        # the recurrent state must build up over a few steps before it says anything
MIN_SIDE = 16         # smaller frames have too few pixels per layer to determine a 3×3 conv's weights
CALIB_FRAMES = 8      # frames a network is measured or refitted on (the first ones of the clip)
CALIB_AREA = 160 * 192  # LR pixels per frame; larger frames are centre-cropped to this area


class CalibrationError(ClipError):
    """Calibration frames that cannot calibrate (too few, too small, not RGB frames)."""


def check_frames(frames: np.ndarray, what: str = "calibration clip", min_frames: int = MIN_FRAMES,
                 min_side: int = MIN_SIDE, purpose: str = "reconstruction") -> np.ndarray:
    """uint8 (T, h, w, 3) frames fit to calibrate on; a one-line ``CalibrationError`` otherwise."""
    if not isinstance(frames, np.ndarray) or frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        shape = getattr(frames, "shape", None)
        raise CalibrationError(f"{what}: expected RGB frames (uint8, T x H x W x 3), got {shape}")
    if len(frames) < min_frames:
        raise CalibrationError(f"{what} is too short: {len(frames)} frame(s), {purpose} needs at least "
                               f"{min_frames} (the recurrent state must build up)")
    h, w = frames.shape[1:3]
    if min(h, w) < min_side:
        raise CalibrationError(f"{what} is too small: {h}x{w} frames (HxW), {purpose} needs at least "
                               f"{min_side}x{min_side}")
    return frames


def read_calibration(path: str | os.PathLike, max_frames: int) -> np.ndarray:
    """The first ``max_frames`` frames of a clip (frame folder or video), checked; ``ClipError`` when it is not
    one."""
    from ..io.source import open_source

    source = open_source(path, max_frames=max_frames)
    return check_frames(np.stack(list(source)), f"calibration clip {source.name}")


def prepare_calibration(frames: np.ndarray, max_frames: int, max_area: int, min_frames: int = MIN_FRAMES,
                        min_side: int = MIN_SIDE, purpose: str = "reconstruction") -> torch.Tensor:
    """(1, T, 3, h, w) float32 in [0, 1]: the first ``max_frames`` frames, centre-cropped to at most ``max_area``
    pixels (aspect kept) so memory and time stay bounded whatever the clip's size."""
    frames = check_frames(frames, min_frames=min_frames, min_side=min_side, purpose=purpose)[:max_frames]
    h, w = frames.shape[1:3]
    scale = min(1.0, math.sqrt(max_area / (h * w)))
    ch, cw = min(h, max(MIN_SIDE, int(h * scale))), min(w, max(MIN_SIDE, int(w * scale)))
    y, x = (h - ch) // 2, (w - cw) // 2
    crop = np.ascontiguousarray(frames[:, y:y + ch, x:x + cw])
    return torch.from_numpy(crop).permute(0, 3, 1, 2).float().div_(255).unsqueeze(0)
