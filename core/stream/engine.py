"""The streaming engine: the exact whole-clip result of BasicVSR, one frame at a time, in bounded memory.

Bidirectional BasicVSR needs, at frame t of its forward pass, the backward state of frame t, which depends on every
later frame. The engine therefore runs three passes over the recurrent steps (Contract 2):

0. read the source once, in order, caching the LR frames (uint8, 3 bytes per LR pixel) — a video cannot be read
   backwards, and re-decoding PNGs twice costs more than reading raw bytes back;
1. the backward pass from the last frame to the first, spilling each backward state (float32, ``4 x num_feat``
   bytes per LR pixel: 14.7 MB per frame at 180x320 for the dense net) to a record file;
2. the forward pass, which reads state t back, runs the forward step and the head, and yields SR frame t at once.

Why spill rather than recompute from checkpoints every K frames: recomputing the backward states of each segment
is a second backward pass (SpyNet + backward trunk, about half of all MACs of a BasicVSR frame), i.e. ~1.5x the
time, which breaks the goal of streaming within 1.1x of whole-clip time. Spilling costs one write and one read of
each state. Measured (``bench/bench_stream.py``, REDS4, 16x16 LR, 200 frames, 1 thread, busy machine):
0.797 s/frame with every state on disk against 0.769 with all in RAM, within that machine's noise.
The price is disk: ``T x 256 x h x w`` bytes (dense) during a run, checked against the free space before pass 0
and reported afterwards. Clips whose states fit in ``memory_budget`` (default 32 MiB) keep them in RAM instead.

BasicVSR-uni has no backward branch: one pass, constant memory, no scratch (an online model).
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import torch
from torch import nn

from core.errors import ClipError
from core.io.frames import tensor_to_frames
from core.io.source import ArraySource
from .scratch import Slots, scratch_dir

__all__ = ["DEFAULT_MEMORY_BUDGET", "private_stepper", "RunTiming", "StreamRun", "stream_frames", "stream_sr"]

DEFAULT_MEMORY_BUDGET = 32 * 2**20      # short clips skip the disk; a few frames at most at full HD input
Progress = Callable[[int, int], None]


def private_stepper(model, device: torch.device | str = "cpu", channels_last: bool | None = None):
    """A private inference copy of a ``BasicVSR`` (eval, on ``device``, channels-last weights on the CPU).

    Why a copy: ``Module.to`` converts in place, and the caller's model is shared (the GUI's current network,
    a model being trained). Anything that is not an ``nn.Module`` (an onnxruntime stepper) is used as it is.
    """
    if not isinstance(model, nn.Module):
        return model
    device = torch.device(device)
    private = copy.deepcopy(model).to(device).eval()
    if channels_last if channels_last is not None else device.type == "cpu":
        private = private.to(memory_format=torch.channels_last)
    return private


def _to_tensor(frame: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 (h, w, 3) -> float32 (1, 3, h, w) in [0, 1], bit-identical to ``frames_to_tensor`` of the clip."""
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ClipError(f"expected a uint8 (h, w, 3) RGB frame, got {frame.dtype} {frame.shape}")
    x = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1).float().div_(255.0)
    return x.unsqueeze(0).contiguous().to(device)


def _state_to_array(h: torch.Tensor) -> np.ndarray:
    """(1, C, h, w) -> (1, h, w, C) on the CPU: a free view for a channels-last state."""
    return h.detach().permute(0, 2, 3, 1).contiguous().cpu().numpy()


def _array_to_state(arr: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(arr).permute(0, 3, 1, 2).to(device)


class StreamRun:
    """SR frames of a clip, produced one at a time by iterating (uint8 (4h, 4w, 3) RGB).

    ``frames`` may be any iterable of uint8 (h, w, 3) frames (a ``FrameSource``); an ``ArraySource`` or a
    ``(T, h, w, 3)`` array is used by index, without a cached copy. ``count`` (if known) lets the disk check and
    the progress total happen before the first pass. ``progress(done, total)`` is called after every recurrent
    step and may raise to cancel; scratch data is removed on every exit, including an abandoned iteration.
    ``raw``: yield the float32 (1, 3, 4h, 4w) network outputs on the CPU instead (exactness checks, metrics in
    float). After the iteration: ``frames_done``, ``seconds``, ``scratch_bytes`` (peak disk used), ``out_size``,
    and ``timing`` (the wall time split into the network's steady time per frame, reading and writing, start-up).
    """

    def __init__(self, model, frames: Iterable[np.ndarray] | np.ndarray, count: int | None = None, *,
                 device: torch.device | str = "cpu", progress: Progress | None = None,
                 scratch: str | Path | None = None, scratch_prefix: str = ".ssl-vsr-scratch-",
                 memory_budget: int = DEFAULT_MEMORY_BUDGET, channels_last: bool | None = None,
                 raw: bool = False) -> None:
        self.device = torch.device(device)
        self.stepper = private_stepper(model, self.device, channels_last)
        if isinstance(frames, ArraySource):
            frames = frames.frames
        self._array = frames if isinstance(frames, np.ndarray) else None
        self._frames = frames
        self.count = len(self._array) if self._array is not None else count
        self._progress = progress
        self._scratch, self._prefix, self._budget = scratch, scratch_prefix, memory_budget
        self._raw = raw
        self.frames_done = 0
        self.seconds = 0.0
        self._steps: dict[str, list[float]] = {"backward": [], "forward": []}
        self.scratch_bytes = 0
        self.out_size: tuple[int, int] | None = None

    # -- helpers ----------------------------------------------------------------------------------------------
    def _tick(self, done: int, total: int) -> None:
        if self._progress is not None:
            self._progress(done, max(total, done))

    def _emit(self, sr: torch.Tensor) -> np.ndarray | torch.Tensor:
        self.out_size = (int(sr.shape[-2]), int(sr.shape[-1]))
        self.frames_done += 1
        return sr.detach().cpu() if self._raw else tensor_to_frames(sr)[0]

    def __iter__(self) -> Iterator[np.ndarray]:
        start = time.perf_counter()
        try:
            with torch.no_grad():
                if self.stepper.bidirectional:
                    yield from self._bidirectional()
                else:
                    yield from self._online()
        finally:
            self.seconds = time.perf_counter() - start

    @property
    def timing(self) -> "RunTiming":
        """Where the wall time went (meaningful once the iteration is over)."""
        return RunTiming.of(self.seconds, self._steps["backward"], self._steps["forward"])

    # -- BasicVSR-uni: one pass ---------------------------------------------------------------------------------
    def _online(self) -> Iterator[np.ndarray]:
        x_prev = h_prev = None
        for i, frame in enumerate(self._frames):
            start = time.perf_counter()
            x = _to_tensor(frame, self.device)
            sr, h_prev = self.stepper.forward_step(x, x_prev, h_prev, None)
            x_prev = x
            out = self._emit(sr)
            self._steps["forward"].append(time.perf_counter() - start)
            yield out
            self._tick(i + 1, self.count or 0)
        _check_length(self.frames_done)

    # -- BasicVSR: cache, backward, forward ---------------------------------------------------------------------
    def _bidirectional(self) -> Iterator[np.ndarray]:
        with scratch_dir(self._scratch, self._prefix) as scratch:
            try:
                lr, t = self._cache_lr(scratch)
                _check_length(t)
                states = self._backward(scratch, lr, t)
                yield from self._forward(lr, states, t)
            finally:
                self.scratch_bytes = max(scratch.peak_bytes, scratch.bytes_used)

    def _state_bytes(self, h: int, w: int) -> int:
        num_feat = getattr(self.stepper, "num_feat", 64)
        return 4 * num_feat * h * w

    def _cache_lr(self, scratch) -> tuple[np.ndarray | Slots, int]:
        """Pass 0: the LR frames where the other passes can read them by index."""
        if self._array is not None:
            return self._array, len(self._array)
        it = iter(self._frames)
        first = next(it, None)
        if first is None:
            raise ClipError("the clip holds no frames")
        h, w = first.shape[:2]
        per_frame = first.nbytes + self._state_bytes(h, w)
        if self.count is not None and self.count * per_frame > self._budget:
            scratch.check_space(self.count * per_frame)
        in_memory = self.count is not None and self.count * per_frame <= self._budget
        lr = scratch.slots("lr", None, first.shape, first.dtype, in_memory=in_memory)
        t = 0
        for frame in _chain(first, it):
            if frame.shape != first.shape:
                raise ClipError(f"frame {t} is {frame.shape[0]}x{frame.shape[1]} but the clip starts at {h}x{w} (HxW): "
                                f"all frames must match")
            lr.put(t, frame)
            t += 1
            self._tick(0, 2 * max(self.count or 0, t))   # no step yet, but a chance to cancel a long read
        return lr, t

    def _backward(self, scratch, lr, t: int) -> Slots:
        """Pass 1: backward states of every frame, last to first, into the scratch store."""
        h, w = _read(lr, 0).shape[:2]
        in_memory = t * self._state_bytes(h, w) <= self._budget
        if not in_memory:
            scratch.check_space(t * self._state_bytes(h, w))
        states: Slots | None = None
        x_next = h_next = None
        for i in range(t - 1, -1, -1):
            start = time.perf_counter()
            x = _to_tensor(_read(lr, i), self.device)
            h_next = self.stepper.backward_step(x, x_next, h_next)
            arr = _state_to_array(h_next)
            if states is None:
                states = scratch.slots("backward", t, arr.shape, arr.dtype, in_memory=in_memory)
            states.put(i, arr)
            x_next = x
            self._steps["backward"].append(time.perf_counter() - start)
            self._tick(t - i, 2 * t)
        return states

    def _forward(self, lr, states: Slots, t: int) -> Iterator[np.ndarray]:
        """Pass 2: forward states and SR frames, first to last, each handed on as soon as it exists."""
        x_prev = h_prev = None
        for i in range(t):
            start = time.perf_counter()
            x = _to_tensor(_read(lr, i), self.device)
            h_b = _array_to_state(states.pop(i), self.device)
            sr, h_prev = self.stepper.forward_step(x, x_prev, h_prev, h_b)
            x_prev = x
            out = self._emit(sr)
            self._steps["forward"].append(time.perf_counter() - start)
            yield out
            self._tick(t + i + 1, 2 * t)


@dataclass(frozen=True)
class RunTiming:
    """A run's wall time, split the way a latency target is stated.

    ``network``: seconds per frame of the recurrent steps once warm (each branch's first step is left out: it
    has no neighbour to align to and pays the kernels' first-call set-up), state spill included, i.e. what one
    more frame of the clip costs the network; ``network_average``: the steps' time over this clip per frame
    (the first frames included); ``io``: seconds per frame outside the steps (reading the source, the sink's
    writing, progress). ``network_average + io`` is the run's time per frame.
    """

    network: float
    network_average: float
    io: float

    @classmethod
    def of(cls, seconds: float, backward: list[float], forward: list[float]) -> "RunTiming":
        frames = max(len(forward), 1)
        in_steps = sum(backward) + sum(forward)
        steady = sum(_steady_mean(steps) for steps in (backward, forward) if steps)
        return cls(steady, in_steps / frames, (seconds - in_steps) / frames)


def _steady_mean(steps: list[float]) -> float:
    warm = steps[1:] or steps
    return sum(warm) / len(warm)


def _chain(first: np.ndarray, rest: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    yield first
    yield from rest


def _read(lr: np.ndarray | Slots, i: int) -> np.ndarray:
    if isinstance(lr, np.ndarray):
        return lr[i]
    return lr.get(i)


def _check_length(t: int) -> None:
    if t < 2:
        raise ClipError(f"the clip has {t} frame{'s' if t != 1 else ''}; BasicVSR needs at least 2 (it propagates "
                        f"between neighbouring frames)")


def stream_frames(model, frames: Iterable[np.ndarray] | np.ndarray, count: int | None = None,
                  **options) -> StreamRun:
    """SR frames of ``model`` over ``frames``, as an iterable ``StreamRun`` (options as ``StreamRun``)."""
    return StreamRun(model, frames, count, **options)


def stream_sr(model, source, sink, **options) -> StreamRun:
    """Write every SR frame of ``source`` (a ``FrameSource``) to ``sink.write`` as it exists; the finished run.

    The caller opens the sink (``with open_sink(...) as sink``) before this, so an error or Ctrl-C here leaves no
    output that looks complete; options as ``StreamRun``.
    """
    run = StreamRun(model, source, getattr(source, "count", None), **options)
    for frame in run:
        sink.write(frame)
    return run
