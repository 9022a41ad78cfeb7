"""The one owner of the quality and time figures the app shows for a network on a clip.

Why: Compare, Export and Study each measured a network their own way (24 frames, 8 frames, N frames; with a
warm-up or without; one mean or another), so the same model read 9.36 dB in one step and 12.43 dB in the next,
and its time three ways, none saying what it covered. Here one rule says what a figure covers (below), and each
(network, clip, reference) gets one figure, measured once: Compare records the figures of the networks it runs
(it streams every frame to show it anyway), Export and Study read them, and measure a missing one here, the same
way, in their own job. Every step prints ``Figure.psnr_text`` and ``Figure.ms_text``: the same digits and the same
words everywhere.

Its Y-PSNR never changes (the engine is deterministic); its time is the latest Compare's run when there is one
(Compare times the networks it compares side by side, so its speed-up holds), else the first measurement.

The rule:

- frames: every frame of the clip, through the streaming engine (as ``sr`` runs a clip), after a short warm-up
  (the first run of a network pays oneDNN's kernel set-up, which is not its speed);
- Y-PSNR against GT: the mean over frames of each frame's PSNR (as VSR tables report it); without GT, against the
  dense network's output: one PSNR over the whole clip (core.study's rule: one unchanged frame cannot make the
  figure infinite);
- time: ms per frame of that streamed run — the network and the engine, not decoding, scoring or storing the
  frames — at the LR size and thread count recorded with it.
"""
from __future__ import annotations

import math
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch

from core.data.degrade import imresize, to_uint8
from core.metrics import psnr
from core.stream import stream_frames

from .alone import measured_alone
from .clips import ClipPair
from .frame_store import FrameStore

WARM_UP_FRAMES = 2
BICUBIC = "bicubic"                  # the name bicubic upscaling's figure is kept under (it is no network)
REFERENCE_TEXT = {"GT": "vs GT", "dense": "vs the dense output"}
TIMING_NOTE = "streamed after a warm-up: the network and the engine, not decoding or scoring frames"


def quality_note(reference: str, frames: int, clip: str) -> str:
    """What a Y-PSNR figure covers: 'Y-PSNR vs GT: mean over all 6 frames of demo'."""
    if reference == "GT":
        return f"Y-PSNR vs GT: mean over all {frames} frames of {clip}"
    return f"Y-PSNR vs the dense output: over the whole clip, all {frames} frames of {clip}"


def timing_note(context: str) -> str:
    """What a time per frame covers: 'ms/frame streamed after a warm-up: …, 2 threads, 64×112 LR (H×W)'."""
    return f"ms per frame {TIMING_NOTE}, {context}"

Progress = Callable[[int, int], None]
OnFrame = Callable[[int, np.ndarray, "float | None"], None]


@dataclass(frozen=True)
class Figure:
    """A network's (or bicubic upscaling's) Y-PSNR and time per frame on every frame of one clip."""

    name: str
    psnr: float | None               # None: not scored (the dense network is the reference itself)
    reference: str                   # "GT" | "dense" (the dense network's output)
    frames: int
    clip: str
    size: tuple[int, int]            # LR (h, w)
    ms_per_frame: float | None = None    # None: not timed (bicubic)
    threads: int = 0
    contended: tuple[str, ...] = ()      # other jobs of the app that ran while it was timed (``app.alone``)

    @property
    def covers(self) -> str:
        """'all 24 frames of demo'"""
        return f"all {self.frames} frames of {self.clip}"

    @property
    def versus(self) -> str:
        return REFERENCE_TEXT.get(self.reference, "")

    def psnr_text(self, unit: bool = True) -> str:
        """'24.93 dB vs GT' (or '24.93' without the unit and reference); '–' when not scored."""
        if self.psnr is None or not math.isfinite(self.psnr):
            return "–" if self.psnr is None or math.isnan(self.psnr) else ("inf" if not unit else "identical")
        return f"{self.psnr:.2f} dB {self.versus}" if unit else f"{self.psnr:.2f}"

    def ms_text(self) -> str:
        """'603 ms/frame' ('–' when not timed)."""
        if self.ms_per_frame is None:
            return "–"
        return f"{self.ms_per_frame:.0f} ms/frame" if self.ms_per_frame < 10_000 else \
            f"{self.ms_per_frame / 1000:.1f} s/frame"

    @property
    def timing_context(self) -> str:
        """'2 threads, 64×112 LR (H×W)'"""
        return f"{self.threads} thread{'s' if self.threads != 1 else ''}, {self.size[0]}×{self.size[1]} LR (H×W)"


# -- the rule ---------------------------------------------------------------------------------------------------
def frame_psnr(sr: np.ndarray, ref: np.ndarray) -> float:
    """One frame's Y-PSNR (uint8 RGB frames of one size)."""
    return psnr(sr, ref, test_y_channel=True)


def clip_psnr(per_frame: Sequence[float], reference: str) -> float:
    """The clip's figure from its frames' Y-PSNRs: their mean against GT; against the dense output the PSNR of the
    whole clip (the mean of the frames' squared errors, which the frames' PSNRs give back exactly)."""
    values = np.asarray(per_frame, dtype=np.float64)
    if values.size == 0:
        return math.nan
    if reference == "GT":
        return float(np.mean(values))
    mse = float(np.mean(np.power(10.0, -values / 10.0)))       # relative to 255² (inf dB → 0)
    return math.inf if mse == 0 else float(-10.0 * np.log10(mse))


def bicubic_frames(frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """MATLAB-bicubic ×4 of each LR frame (the baseline every VSR paper reports)."""
    for lr in frames:
        yield to_uint8(imresize(lr.astype(np.float64) / 255.0, 4))


class _Timed:
    """Iterates ``frames`` and adds up only the time spent producing them (not the consumer's)."""

    def __init__(self, frames: Iterable[np.ndarray]) -> None:
        self._it, self.seconds = iter(frames), 0.0

    def __iter__(self) -> Iterator[np.ndarray]:
        while True:
            start = time.perf_counter()
            try:
                frame = next(self._it)
            except StopIteration:
                self.seconds += time.perf_counter() - start
                return
            self.seconds += time.perf_counter() - start
            yield frame


def warm_up(network: Any, lr: FrameStore, device: torch.device | str = "cpu") -> None:
    """Run the first frames once, unscored and untimed: oneDNN sets its kernels up on a network's first run."""
    n = min(WARM_UP_FRAMES, len(lr))
    if n >= 2:
        for _ in stream_frames(network, np.stack([lr[i] for i in range(n)]), device=device):
            pass


def measure(name: str, network: Any, clip: ClipPair, *, dense_frames: FrameStore | None = None,
            on_frame: OnFrame | None = None, progress: Progress | None = None,
            device: torch.device | str = "cpu") -> Figure:
    """``network``'s figure on every frame of ``clip`` by the rule above (worker threads).

    ``network``: a ``BasicVSR`` (the engine runs a private copy) or an exported file's stepper. Without GT each
    frame is scored against ``dense_frames`` (the dense network's output), or not at all when that is None (the
    dense network itself). ``on_frame(i, frame, psnr)`` sees every SR frame as it exists.
    """
    with measured_alone() as contended:
        warm_up(network, clip.lr, device)
        reference = "GT" if clip.gt is not None else "dense"
        run = _Timed(stream_frames(network, iter(clip.lr), len(clip.lr), device=device, progress=progress))
        values: list[float] = []
        for i, frame in enumerate(run):
            ref = clip.gt[i] if clip.gt is not None else dense_frames[i] if dense_frames is not None else None
            value = frame_psnr(frame, ref) if ref is not None else None
            if value is not None:
                values.append(value)
            if on_frame is not None:
                on_frame(i, frame, value)
        frames = len(clip.lr)
        return Figure(name, clip_psnr(values, reference) if values else None, reference, frames, clip.name,
                      clip.lr_size, 1000.0 * run.seconds / max(frames, 1), torch.get_num_threads(),
                      tuple(sorted(contended)))


def bicubic_figure(clip: ClipPair, per_frame: Sequence[float]) -> Figure:
    """Bicubic upscaling's figure from its frames' Y-PSNRs (not timed: it is no network)."""
    reference = "GT" if clip.gt is not None else "dense"
    return Figure(BICUBIC, clip_psnr(per_frame, reference), reference, len(clip), clip.name, clip.lr_size)


# -- the owner ---------------------------------------------------------------------------------------------------
def _ref(obj: Any) -> Callable[[], Any]:
    """A weak reference where the object allows one (networks, clips), else a strong one (a name)."""
    try:
        return weakref.ref(obj)
    except TypeError:
        return lambda: obj


class Figures:
    """Each (network, clip, reference) has one figure here, the one every step shows: measured once by whichever
    step needs it first, and replaced only by a new Compare run of it.

    Networks and clips are told apart by identity (the app never changes a loaded network in place: a trained
    or reconstructed one is a new object), held weakly so a figure goes with its network. Without GT a figure
    also belongs to the dense network whose output it was scored against. Thread-safe (jobs read and record).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[tuple, tuple[tuple[Callable[[], Any], ...], Figure]] = {}

    @staticmethod
    def _parts(network: Any, clip: ClipPair, dense: Any) -> tuple[Any, ...]:
        return (network, clip, None if clip.gt is not None else dense)

    def get(self, network: Any, clip: ClipPair | None, dense: Any = None) -> Figure | None:
        """The figure of ``network`` (a network, or ``BICUBIC``) on ``clip``; without GT, against ``dense``."""
        if network is None or clip is None:
            return None
        parts = self._parts(network, clip, dense)
        with self._lock:
            item = self._items.get(tuple(id(p) for p in parts))
        if item is None or any(r() is not p for r, p in zip(item[0], parts)):
            return None
        return item[1]

    def record(self, network: Any, clip: ClipPair, figure: Figure, dense: Any = None, *,
               replace: bool = False) -> Figure:
        """Keep ``figure`` unless one is kept already (``replace``: keep this one instead — Compare's new run, so
        the networks it compares are timed side by side); returns the kept one, the figure every step shows."""
        parts = self._parts(network, clip, dense)
        key = tuple(id(p) for p in parts)
        with self._lock:
            item = self._items.get(key)
            if item is not None and all(r() is p for r, p in zip(item[0], parts)) and not replace:
                return item[1]
            self._items = {k: v for k, v in self._items.items() if all(r() is not None for r in v[0][:2])}
            self._items[key] = (tuple(_ref(p) for p in parts), figure)
        return figure

    def dense_output(self, clip: ClipPair, dense: Any, progress: Progress | None = None) -> FrameStore:
        """The dense network's SR frames of ``clip`` (what figures without GT are scored against), in a disk-backed
        store (worker threads); the run is the dense network's figure when none is kept yet."""
        frames = FrameStore()
        if self.get(dense, clip, dense) is None:
            figure = measure("dense", dense, clip, on_frame=lambda i, f, v: frames.write(f), progress=progress)
            self.record(dense, clip, figure, dense)
        else:
            for frame in stream_frames(dense, iter(clip.lr), len(clip.lr), progress=progress):
                frames.write(frame)
        return frames

    def ensure(self, clip: ClipPair, networks: Mapping[str, Any], dense: Any = None, *, bicubic: bool = False,
               dense_frames: FrameStore | None = None, progress: Progress | None = None) -> dict[str, Figure]:
        """The figures of ``networks`` (name → network; the dense one is ``dense``) and, with ``bicubic``, of
        bicubic upscaling on ``clip``; the missing ones are measured here (worker threads) and kept. Without GT
        they are scored against ``dense_frames`` (``dense_output``; made here when needed and not given)."""
        out: dict[str, Figure] = {}
        missing = {}
        for name, net in networks.items():
            known = self.get(net, clip, dense) if net is not None else None
            if known is not None:
                out[name] = known
            elif net is not None:
                missing[name] = net
        want_bicubic = bicubic and self.get(BICUBIC, clip, dense) is None
        if clip.gt is None and dense_frames is None and (want_bicubic or missing):
            if dense is None:
                raise ValueError("without GT a figure is scored against the dense network's output: no dense "
                                 "network")
            dense_frames = self.dense_output(clip, dense, progress)
        for name, net in missing.items():
            known = self.get(net, clip, dense)          # the dense output's run may have measured it
            out[name] = known if known is not None else self.record(
                net, clip, measure(name, net, clip, dense_frames=dense_frames if net is not dense else None,
                                   progress=progress), dense)
        if bicubic:
            known = self.get(BICUBIC, clip, dense)
            if known is None:
                ref = clip.gt if clip.gt is not None else dense_frames
                values = [frame_psnr(b, ref[i]) for i, b in enumerate(bicubic_frames(clip.lr))]
                known = self.record(BICUBIC, clip, bicubic_figure(clip, values), dense)
            out[BICUBIC] = known
        return out
