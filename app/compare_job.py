"""The work behind Compare, run in a background job: bicubic, dense SR, pruned SR, per-frame PSNR — streamed.

Frames are read from the clip's disk-backed store and every output frame goes to a disk-backed store the moment
it exists, with its PSNR sent to the window as a ``CompareFrame`` event: memory does not grow with the clip, the
scrubber shows every frame already computed, and the plot fills in while the job runs. Each network runs on
its own copy made by the engine (the app's models are shared by every step and never changed by one).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

from core.data.degrade import imresize, to_uint8
from core.device import resolve_device
from core.metrics import psnr
from core.models.basicvsr import BasicVSR
from core.stream import stream_frames

from .clips import ClipPair
from .frame_store import FrameStore
from .state import CompareResult
from .workers import Job

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class CompareFrame:
    """One output frame is stored: which series, which frame, its PSNR (Y) against GT when known."""

    series: str            # 'bicubic' | 'dense' | 'pruned'
    index: int
    psnr: float | None


def bicubic_frames(frames: FrameStore) -> Iterator[np.ndarray]:
    """MATLAB-bicubic ×4 of each LR frame (the baseline every VSR paper reports)."""
    for lr in frames:
        yield to_uint8(imresize(lr.astype(np.float64) / 255.0, 4))


def stream_sr(model: BasicVSR, frames: FrameStore, device, progress: Progress) -> Iterator[np.ndarray]:
    """SR frames of ``model`` in order, as the streaming engine produces them (exact whole-clip result).

    The engine runs a private copy of ``model`` (``core.stream.private_stepper``): the app's model is untouched.
    """
    yield from stream_frames(model, iter(frames), len(frames), device=device, progress=progress)


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
    """Fill ``result`` with each model's SR frames and per-frame PSNR (Y channel, as the VSR papers)."""
    dev = resolve_device(device)
    clip = result.clip
    t = len(clip.lr)
    steps = {name: t * (2 if m.spec.bidirectional else 1) for name, m in models.items()}
    total = t + sum(steps.values())

    def score(series: str, i: int, frame: np.ndarray) -> float | None:
        if clip.gt is not None:
            return psnr(frame, clip.gt[i], test_y_channel=True)
        if result.reference != "dense":
            return None
        if series == "dense":          # bicubic is scored against the dense frame once that exists
            result.psnr["bicubic"].append(psnr(result.bicubic[i], frame, test_y_channel=True))
            return None
        dense = result.outputs["dense"]
        return psnr(frame, dense[i], test_y_channel=True) if i < len(dense) else None

    def keep(series: str, store: FrameStore, frames: Iterator[np.ndarray]) -> float:
        """Store and score each frame as it arrives; returns the seconds spent here (not in the network)."""
        spent = 0.0
        for i, frame in enumerate(frames):
            start = time.perf_counter()
            store.write(frame)
            value = score(series, i, frame)
            if value is not None and series in result.psnr:
                result.psnr[series].append(value)
            job.emit_event(CompareFrame(series, i, value))
            spent += time.perf_counter() - start
        return spent

    def bicubic_progress() -> Iterator[np.ndarray]:
        for i, frame in enumerate(bicubic_frames(clip.lr)):
            job.report(i + 1, total)
            yield frame

    keep("bicubic", result.bicubic, bicubic_progress())
    done = t
    for name, model in models.items():
        offset = done
        start = time.perf_counter()
        spent = keep(name, result.outputs[name],
                     stream_sr(model, clip.lr, dev, lambda d, _t, o=offset: job.report(o + d, total)))
        result.seconds_per_frame[name] = (time.perf_counter() - start - spent) / max(t, 1)
        done += steps[name]
    result.complete = True
    job.report(total, total)
    return result
