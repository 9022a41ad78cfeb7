"""The work behind Compare, run in a background job: bicubic, dense SR, pruned SR, per-frame PSNR — streamed.

Frames are read from the clip's disk-backed store and every output frame goes to a disk-backed store the moment
it exists, with its PSNR sent to the window as a ``CompareFrame`` event: memory does not grow with the clip, the
scrubber shows every frame already computed, and the plot fills in while the job runs. Each network runs on
its own copy made by the engine (the app's models are shared by every step and never changed by one).

Each network is measured by ``app.figures.measure`` — the one rule every step's figures follow (every frame,
after a warm-up, streamed; the same PSNR and timing) — and a finished comparison's figures are recorded in the
app's ``Figures``, which Export and Study read.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from core.device import resolve_device
from core.models.basicvsr import BasicVSR

from .clips import ClipPair
from .figures import BICUBIC, bicubic_figure, bicubic_frames, frame_psnr, measure
from .frame_store import FrameStore
from .state import CompareResult
from .workers import Job

Progress = Callable[[int, int], None]

__all__ = ["CompareFrame", "bicubic_frames", "new_result", "run_compare"]


@dataclass(frozen=True)
class CompareFrame:
    """One output frame is stored: which series, which frame, its PSNR (Y) against GT when known."""

    series: str            # 'bicubic' | 'dense' | 'pruned'
    index: int
    psnr: float | None


def new_result(clip: ClipPair, series: tuple[str, ...]) -> CompareResult:
    """An empty result the job fills in frame by frame (the window shows it while it grows).

    PSNR is against GT when the clip has it; without GT, bicubic and the pruned network are scored against the
    dense network's output (when it runs), so "below bicubic" can still be told."""
    if clip.gt is not None:
        psnr, reference = {name: [] for name in ("bicubic", *series)}, "GT"
    elif "dense" in series:
        psnr, reference = {name: [] for name in ("bicubic", *series) if name != "dense"}, "dense"
    else:
        psnr, reference = {}, "GT"
    return CompareResult(clip, FrameStore(), {name: FrameStore() for name in series}, psnr=psnr, reference=reference)


def run_compare(job: Job, result: CompareResult, models: dict[str, BasicVSR], device: str = "auto") -> CompareResult:
    """Fill ``result`` with each model's SR frames, per-frame PSNR (Y channel, as the VSR papers) and figures."""
    dev = resolve_device(device)
    clip = result.clip
    t = len(clip.lr)
    steps = {name: t * (2 if m.spec.bidirectional else 1) for name, m in models.items()}
    total = t + sum(steps.values())

    def keep(series: str, store: FrameStore) -> Callable[[int, np.ndarray, float | None], None]:
        """Store and score each frame as it arrives (the scoring is ``measure``'s; bicubic's and, without GT,
        the scores against the dense frames are added here)."""
        def on_frame(i: int, frame: np.ndarray, value: float | None) -> None:
            store.write(frame)
            if series == "dense" and result.reference == "dense":      # bicubic is scored against the dense frame
                result.psnr["bicubic"].append(frame_psnr(result.bicubic[i], frame))
            if value is not None and series in result.psnr:
                result.psnr[series].append(value)
            job.emit_event(CompareFrame(series, i, value))
        return on_frame

    for i, frame in enumerate(bicubic_frames(clip.lr)):
        result.bicubic.write(frame)
        value = frame_psnr(frame, clip.gt[i]) if clip.gt is not None else None
        if value is not None:
            result.psnr["bicubic"].append(value)
        job.emit_event(CompareFrame("bicubic", i, value))
        job.report(i + 1, total)
    done = t
    for name, model in models.items():
        offset = done
        dense_frames = result.outputs.get("dense") if name != "dense" and clip.gt is None else None
        figure = measure(name, model, clip, dense_frames=dense_frames, on_frame=keep(name, result.outputs[name]),
                         progress=lambda d, _t, o=offset: job.report(o + d, total), device=dev)
        result.figures[name] = figure
        result.seconds_per_frame[name] = figure.ms_per_frame / 1000.0
        done += steps[name]
    if result.psnr.get("bicubic") and len(result.psnr["bicubic"]) == t:
        result.figures[BICUBIC] = bicubic_figure(clip, result.psnr["bicubic"])
    result.complete = True
    job.report(total, total)
    return result
