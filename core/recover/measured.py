"""A pruned network's state measured on the clip it is about to upscale, not taken from its file's word.

Why: ``sr`` warned about a raw cut only when the model file's metadata said so; editing that metadata to say
"recovered" dropped the warning. A raw cut's output is far from any real upscaling (often noise), and that is
measurable without ground truth: the SR frames, scaled back down ×4 (bicubic), should reproduce the LR frames at
least as well as plain bicubic upscaling does (the "LR consistency" the int8 export's guard uses as well). The
probe is a few centre-cropped frames, so it costs a second or two whatever the clip's size.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from ..data.degrade import bi_degrade
from ..metrics import bicubic_upscale, y_psnr_frames
from ..data.calib import CALIB_AREA, prepare_calibration
from .status import RecoveryStatus

PROBE_FRAMES = 4                # the recurrent state settles within a few frames
PROBE_AREA = CALIB_AREA // 4    # LR pixels per probe frame (about 80 x 96)


def margin_over_bicubic(network, frames: np.ndarray, device: torch.device) -> float:
    """LR-consistency Y-PSNR (dB) of ``network``'s output minus bicubic upscaling's, on the first
    ``PROBE_FRAMES`` of uint8 (T, h, w, 3) ``frames``, centre-cropped to ``PROBE_AREA`` pixels."""
    from ..infer import super_resolve

    probe = prepare_calibration(frames, PROBE_FRAMES, PROBE_AREA, min_frames=2, min_side=1,
                                purpose="measuring the model")
    lr = (probe[0].permute(0, 2, 3, 1).mul(255).round().to(torch.uint8)).numpy()
    sr = super_resolve(network, lr, device).frames
    return y_psnr_frames(bi_degrade(sr), lr) - y_psnr_frames(bi_degrade(bicubic_upscale(lr)), lr)


def measured_status(status: RecoveryStatus, network, frames: np.ndarray, device: torch.device) -> RecoveryStatus:
    """``status`` with the measured margin of a pruned network whose file does not already call it a raw cut
    (a dense network, or one already flagged, is not measured)."""
    if not status.pruned or status.raw_cut:
        return status
    return replace(status, measured_margin=margin_over_bicubic(network, frames, device))
