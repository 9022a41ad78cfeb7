"""The work behind Compare, run in a background job: bicubic, dense SR, pruned SR, per-frame PSNR.

Only core calls in sequence; the progress callback is the job's, so Cancel stops inside the network's loop.
"""
from __future__ import annotations

import numpy as np

from core.data.degrade import imresize, to_uint8
from core.device import resolve_device
from core.infer import super_resolve
from core.metrics import psnr
from core.models.basicvsr import BasicVSR

from .clips import ClipPair
from .state import CompareResult
from .workers import Job


def run_compare(job: Job, clip: ClipPair, models: dict[str, BasicVSR], device: str = "auto") -> CompareResult:
    """Super-resolve ``clip`` with each model; PSNR (Y channel, as the VSR papers) when GT is known."""
    dev = resolve_device(device)
    steps = {name: len(clip.lr) * (2 if m.spec.bidirectional else 1) for name, m in models.items()}
    total = sum(steps.values()) + 1
    result = CompareResult(clip, to_uint8(imresize(clip.lr.astype(np.float64) / 255.0, 4)))
    job.report(1, total)
    done = 1
    for name, model in models.items():
        offset = done
        sr = super_resolve(model, clip.lr, dev, progress=lambda d, _t, o=offset: job.report(o + d, total))
        done += steps[name]
        result.outputs[name] = sr.frames
        result.seconds_per_frame[name] = sr.seconds_per_frame
    if clip.gt is not None:
        series = {"bicubic": result.bicubic, **result.outputs}
        for name, frames in series.items():
            result.psnr[name] = [psnr(f, g, test_y_channel=True) for f, g in zip(frames, clip.gt)]
    return result
