"""Reconstruction at the cut: refit the pruned network so its own activations reproduce the dense network's.

Why: a raw cut of a recurrent VSR network is not a worse network but noise — each step's small error is fed
back through the hidden state and grows without bound. Least squares on calibration frames (no ground truth:
the dense network is the teacher) refits, in network order, each residual block's ``conv1`` (to the dense
pre-activations of the filters it kept) and ``conv2`` (so the stream after the block equals the dense stream),
then the head's convolutions (fusion, upconv1, upconv2, conv_hr to their dense pre-activations, conv_last to
the dense output). Every refit sees the refits before it, so errors do not pile up.

The recurrence is handled in rounds. Round 0 is *teacher-forced*: every step's trunk reads the dense network's
warped state, so each step is fitted to map the dense state of one frame to the dense state of the next. Round r
reads instead the state the pruned network reaches r steps after a dense state (its own drift, one batched pass
per step) and refits the trunks, input convs included, against the same dense targets: each round teaches them
to pull a state that drifted one step further back. Fitting straight on fully closed-loop states fails at
ratio 0.5 — the cut's states have already diverged to Inf by then. The head is fitted last, on the pruned
network's own closed-loop states.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..events import EventSink, Progress, RunControl, eta_seconds, ignore
from ..models.basicvsr import BasicVSR, Trunk
from ..models.layout import select_channels
from ..ssl.plan import Plan
from ..ssl.prune import units_to_filters
from ..ssl.scale import fold_scale_factors, has_scale_factors
from ..data.calib import CALIB_AREA, CALIB_FRAMES, MIN_FRAMES, check_frames, prepare_calibration
from .lstsq import NormalEquations, output_rows, patch_rows, sample_pixels, solve_conv

STAGE = "reconstruct"


@dataclass(frozen=True)
class ReconstructSettings:
    """How much calibration data the refits use and how strongly they are held to the old weights."""

    max_frames: int = CALIB_FRAMES  # calibration frames fitted on (the first ones of the clip)
    holdout: int = 5              # frames after those, never fitted on, that judge whether the network recovered
    max_area: int = CALIB_AREA    # LR pixels per frame; larger frames are centre-cropped to this area
    rows: int = 16384             # pixel rows sampled per layer for its normal equations
    ridge: float = 1e-2           # relative to the mean diagonal of xᵀx, towards the cut's own weights
    rounds: int = 2               # rounds after the teacher-forced one, each from states one step further off
    head_crop: int = 48           # LR side of the per-frame crops the head is fitted on
    seed: int = 0

    @property
    def frames_to_read(self) -> int:
        """Frames a caller reads from the calibration clip: the fitted ones and the held-out ones after them."""
        return self.max_frames + self.holdout

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ReconstructReport:
    """What a reconstruction did, in numbers a person can check (and a model file records)."""

    frames: int                            # calibration frames fitted on
    size: tuple[int, int]                  # (h, w) of the calibration frames used
    seconds: float
    psnr_raw: float                        # PSNR of the raw cut's output against the dense output (fitted frames)
    psnr_after: float                      # the same after reconstruction
    psnr_bicubic: float                    # bicubic upscaling of the same frames against the dense output
    layers_refit: int
    layers_kept: int                       # refits skipped (no solution): those layers keep the cut's weights
    calib: str | None = None
    settings: ReconstructSettings = field(default_factory=ReconstructSettings)
    heldout_frames: int = 0                # frames after the fitted ones, run through but never fitted on
    psnr_heldout: float = math.nan         # the reconstructed output against the dense output on those frames
    psnr_bicubic_heldout: float = math.nan  # bicubic's on those frames

    @property
    def recovered(self) -> bool:
        """Closer to the dense network than bicubic upscaling is, judged on the held-out frames when the clip had
        any (the fitted ones otherwise). Necessary, not sufficient: held-out frames are still the same scene, and
        at ratio 0.5 reconstructions have measured far below bicubic on other clips."""
        if self.heldout_frames:
            return self.psnr_heldout > self.psnr_bicubic_heldout
        return self.psnr_after > self.psnr_bicubic

    def to_meta(self) -> dict[str, Any]:
        return {"method": "least squares to the dense network's activations (teacher-forced, then closed-loop)",
                "calib": self.calib, "frames": self.frames, "size": list(self.size),
                "seconds": round(self.seconds, 2), "psnr_vs_dense_raw": _rounded(self.psnr_raw),
                "psnr_vs_dense": _rounded(self.psnr_after), "bicubic_psnr_vs_dense": _rounded(self.psnr_bicubic),
                "heldout_frames": self.heldout_frames, "psnr_vs_dense_heldout": _rounded(self.psnr_heldout),
                "bicubic_psnr_vs_dense_heldout": _rounded(self.psnr_bicubic_heldout),
                "recovered": self.recovered, "layers_refit": self.layers_refit,
                "layers_kept": self.layers_kept, "settings": self.settings.to_json()}

    def summary(self) -> str:
        heldout = (f"; on {self.heldout_frames} later frames it was not fitted on: {self.psnr_heldout:.2f} dB "
                   f"(bicubic {self.psnr_bicubic_heldout:.2f} dB)" if self.heldout_frames else
                   "; the clip was too short to hold frames out")
        return (f"reconstructed {self.layers_refit} layers on {self.frames} calibration frames of "
                f"{self.size[0]}x{self.size[1]} (HxW) in {self.seconds:.1f} s: output vs dense {self.psnr_raw:.2f} dB "
                f"(raw cut) -> {self.psnr_after:.2f} dB (bicubic upscaling: {self.psnr_bicubic:.2f} dB){heldout}; "
                f"other video can score far lower, check it (eval, Compare)")


def _rounded(v: float) -> float | None:
    return round(v, 3) if math.isfinite(v) else None


@dataclass
class _Trace:
    """One network's run over the calibration clip: flows and the hidden state of every step of each branch."""

    frames: list[torch.Tensor]
    flows: dict[str, torch.Tensor | None]      # branch → (1, T-1, 2, h, w)
    states: dict[str, list[torch.Tensor]]      # branch → state per frame

    def trunk_inputs(self, model: BasicVSR, branch: str) -> torch.Tensor:
        """(T, C+3, h, w): what the branch's trunk read at every step."""
        t = len(self.frames)
        step = 1 if branch == "backward" else -1
        rows = []
        for i in range(t):
            j = i + step
            prev = self.states[branch][j] if 0 <= j < t else None
            flow = None if prev is None else self.flows[branch][:, min(i, j)]
            rows.append(model.trunk_input(self.frames[i], prev, flow))
        return torch.cat(rows)

    def head_input(self, model: BasicVSR, i: int) -> torch.Tensor:
        h_f = self.states["forward"][i]
        return torch.cat([self.states["backward"][i], h_f], dim=1) if model.bidirectional else h_f


def _record(model: BasicVSR, x: torch.Tensor, flows: dict[str, torch.Tensor | None] | None = None) -> _Trace:
    """``model``'s run over ``x``; ``flows`` (another trace's) when its SpyNet is the same, which a cut's is."""
    t = x.shape[1]
    if flows is None:
        fwd, bwd = model.flows(x)
        flows = {"forward": fwd, "backward": bwd}
    frames = [x[:, i] for i in range(t)]
    trace = _Trace(frames, flows, {})
    for branch, trunk in model.trunks().items():
        order = range(t - 1, -1, -1) if branch == "backward" else range(t)
        states: list[torch.Tensor | None] = [None] * t
        prev = None
        for i in order:
            flow = None if prev is None else trace.flows[branch][:, min(i, i + (1 if branch == "backward" else -1))]
            prev = states[i] = trunk(model.trunk_input(frames[i], prev, flow))
        trace.states[branch] = states
    return trace


def _rollout(model: BasicVSR, trace: _Trace, branch: str, steps: int) -> _Trace:
    """``trace`` with ``branch``'s states replaced by where ``model`` gets in ``steps`` steps from the states
    ``steps`` frames back (one batched trunk pass per step)."""
    states = trace.states
    for _ in range(steps):
        probe = _Trace(trace.frames, trace.flows, states)
        states = {**states, branch: list(model.trunks()[branch](probe.trunk_inputs(model, branch)).split(1))}
    return _Trace(trace.frames, trace.flows, states)


def _same_spynet(a: BasicVSR, b: BasicVSR) -> bool:
    sa, sb = a.spynet.state_dict(), b.spynet.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _outputs(model: BasicVSR, trace: _Trace, frames: range | None = None) -> torch.Tensor:
    """(T, 3, 4h, 4w) outputs at ``frames`` (all of them by default)."""
    frames = range(len(trace.frames)) if frames is None else frames
    return torch.cat([model.upsample(trace.head_input(model, i), trace.frames[i]) for i in frames])


def _bicubic(x: torch.Tensor) -> torch.Tensor:
    """(T, 3, 4h, 4w) bicubic ×4 upscaling of the calibration clip (1, T, 3, h, w): the bar a network must clear."""
    return F.interpolate(x[0], scale_factor=4, mode="bicubic", align_corners=False)


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.clamp(0, 1) - b.clamp(0, 1)) ** 2).mean())
    if not math.isfinite(mse):       # a diverged network (NaN outputs) is as far from the reference as it gets
        return float("-inf")
    return 10 * math.log10(1 / mse) if mse > 0 else float("inf")


class _Fitter:
    """Refits one conv at a time from (input, target pre-activation) tensors, counting what it did."""

    def __init__(self, settings: ReconstructSettings, total: int, sink: EventSink, control: RunControl | None):
        self.settings = settings
        self.gen = torch.Generator().manual_seed(settings.seed)
        self.total, self.done, self.refit, self.kept = total, 0, 0, 0
        self.sink, self.control = sink, control
        self.started = time.perf_counter()

    def fit(self, conv: nn.Conv2d, x: torch.Tensor, target: torch.Tensor, border: int = 0) -> None:
        if self.control is not None:
            self.control.checkpoint()
        k = conv.kernel_size[0]
        idx = sample_pixels(tuple(x.shape), self.settings.rows, self.gen, border).to(x.device)
        eq = NormalEquations.empty(conv.in_channels * k * k, conv.out_channels, x.device)
        eq.add(patch_rows(x.float(), k, idx), output_rows(target.float(), idx))
        if solve_conv(conv, eq, self.settings.ridge):
            self.refit += 1
        else:
            self.kept += 1
        self.done += 1
        elapsed = time.perf_counter() - self.started
        self.sink(Progress(STAGE, min(self.done, self.total), self.total, seconds_per_iter=elapsed / self.done,
                           eta_seconds=eta_seconds(elapsed, self.done, self.total)))


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.1)


def _fit_trunk(branch: str, dense: Trunk, pruned: Trunk, x_d: torch.Tensor, x_p: torch.Tensor,
               kept: dict[str, torch.Tensor], fitter: _Fitter, fit_input: bool) -> None:
    """Refit a trunk block after block so its stream follows the dense one from inputs ``x_p``."""
    pre = dense.main[0](x_d)
    if fit_input:
        fitter.fit(pruned.main[0], x_p, pre)
    s_d, s_p = _lrelu(pre), _lrelu(pruned.main[0](x_p))
    del pre
    for k, (bd, bp) in enumerate(zip(dense.blocks, pruned.blocks)):
        pre_d = bd.conv1(s_d if bd.reads is None else select_channels(s_d, bd.reads))
        nxt = bd(s_d)
        h_in = s_p if bp.reads is None else select_channels(s_p, bp.reads)
        fitter.fit(bp.conv1, h_in, pre_d.index_select(1, kept[f"{branch}.{k}.mid"]))
        del pre_d
        act = F.relu(bp.conv1(h_in))
        # The stream the pruned block must produce, not the dense block's own residual: each block also corrects
        # what the blocks before it got wrong (reproducing residuals instead let the recurrence diverge).
        target = nxt - s_p
        fitter.fit(bp.conv2, act, target if bp.writes is None else target.index_select(1, bp.writes))
        del act, target
        s_p, s_d = bp(s_p), nxt


def _head_crops(trace: _Trace, model: BasicVSR, side: int, gen: torch.Generator) -> tuple[torch.Tensor, list]:
    """The head's input on one random ``side``×``side`` LR crop per frame (the head is convolutional: a crop
    calibrates it as well as the whole frame, at a fraction of the 16×-sized activations)."""
    boxes, crops = [], []
    for i in range(len(trace.frames)):
        feat = trace.head_input(model, i)
        h, w = feat.shape[-2:]
        ch, cw = min(side, h), min(side, w)
        y = int(torch.randint(0, h - ch + 1, (1,), generator=gen))
        x = int(torch.randint(0, w - cw + 1, (1,), generator=gen))
        boxes.append((y, x, ch, cw))
        crops.append(feat[..., y:y + ch, x:x + cw])
    return torch.cat(crops), boxes


def _crop_like(trace: _Trace, model: BasicVSR, boxes: list) -> torch.Tensor:
    return torch.cat([trace.head_input(model, i)[..., y:y + h, x:x + w] for i, (y, x, h, w) in enumerate(boxes)])


def _fit_head(dense: BasicVSR, pruned: BasicVSR, trace_d: _Trace, trace_p: _Trace, kept: dict[str, torch.Tensor],
              fitter: _Fitter) -> None:
    """fusion, upconv1, upconv2 and conv_hr to the dense pre-activations of their kept filters, then conv_last
    to the dense output, each on the refitted layers before it."""
    a_p, boxes = _head_crops(trace_p, pruned, fitter.settings.head_crop, fitter.gen)
    a_d = _crop_like(trace_d, dense, boxes)
    if dense.bidirectional:
        pre = dense.fusion(a_d)
        fitter.fit(pruned.fusion, a_p, pre.index_select(1, kept["fusion"]), border=2)
        a_d, a_p = _lrelu(pre), _lrelu(pruned.fusion(a_p))
    for scale, name in ((1, "upconv1"), (2, "upconv2")):
        conv_d, conv_p = getattr(dense, name), getattr(pruned, name)
        pre = conv_d(a_d)
        fitter.fit(conv_p, a_p, pre.index_select(1, units_to_filters(kept[name], 4)), border=2 * scale)
        a_d, a_p = F.pixel_shuffle(_lrelu(pre), 2), F.pixel_shuffle(_lrelu(conv_p(a_p)), 2)
    pre = dense.conv_hr(a_d)
    fitter.fit(pruned.conv_hr, a_p, pre.index_select(1, kept["conv_hr"]), border=8)
    a_d, a_p = _lrelu(pre), _lrelu(pruned.conv_hr(a_p))
    fitter.fit(pruned.conv_last, a_p, dense.conv_last(a_d), border=8)


def _split(available: int, settings: ReconstructSettings) -> tuple[int, int]:
    """(frames fitted on, frames held out after them) from a clip of ``available`` frames: hold out what is asked
    while at least ``MIN_FRAMES`` remain to fit on."""
    available = min(available, settings.frames_to_read)
    hold = min(settings.holdout, max(available - MIN_FRAMES, 0))
    fit = min(settings.max_frames, available - hold)
    return fit, min(settings.holdout, available - fit)


def _heldout(teacher: BasicVSR, student: BasicVSR, x_all: torch.Tensor, n_hold: int,
             same_flow: bool) -> dict[str, Any]:
    """Both networks run over the whole clip; the student's output against the teacher's (and bicubic's) on the
    last ``n_hold`` frames, which no refit saw."""
    if n_hold == 0:
        return {}
    trace_d = _record(teacher, x_all)
    trace_p = _record(student, x_all, trace_d.flows if same_flow else None)
    tail = range(x_all.shape[1] - n_hold, x_all.shape[1])
    reference = _outputs(teacher, trace_d, tail)
    return {"heldout_frames": n_hold, "psnr_heldout": _psnr(_outputs(student, trace_p, tail), reference),
            "psnr_bicubic_heldout": _psnr(_bicubic(x_all)[tail.start:], reference)}


def count_fits(model: BasicVSR, rounds: int) -> int:
    """Layer refits a reconstruction makes: two per block per round, input convs after the first, the head."""
    blocks = sum(len(t.blocks) for t in model.trunks().values())
    trunks = len(model.trunks())
    head = 5 if model.bidirectional else 4
    return 2 * blocks * (1 + rounds) + trunks * rounds + head


@torch.no_grad()
def reconstruct(dense: BasicVSR, pruned: BasicVSR, plan: Plan, frames: np.ndarray,
                settings: ReconstructSettings = ReconstructSettings(), *, calib_name: str | None = None,
                sink: EventSink = ignore, control: RunControl | None = None) -> tuple[BasicVSR, ReconstructReport]:
    """A copy of ``pruned`` (cut from ``dense`` by ``plan``) refitted on ``frames`` (uint8 (T, h, w, 3) RGB LR
    frames, no ground truth): on the first ``settings.max_frames``, judged on up to ``settings.holdout`` after
    them. Neither model is changed."""
    started = time.perf_counter()
    n_fit, n_hold = _split(len(check_frames(frames)), settings)
    x_all = prepare_calibration(frames, n_fit + n_hold, settings.max_area)
    device = next(pruned.parameters()).device
    x_all = x_all.to(device)
    x = x_all[:, :n_fit]
    teacher = fold_scale_factors(dense) if has_scale_factors(dense) else dense
    teacher = copy.deepcopy(teacher).float().eval()          # its own copy: nobody else's module is touched
    student = copy.deepcopy(pruned).float().eval()
    kept = {l.name: torch.tensor(l.kept, dtype=torch.long, device=device) for l in plan.layers}
    fitter = _Fitter(settings, count_fits(student, settings.rounds), sink, control)

    trace_d = _record(teacher, x)
    reference = _outputs(teacher, trace_d)
    same_flow = _same_spynet(teacher, student)
    trace_p = _record(student, x, trace_d.flows if same_flow else None)
    psnr_raw = _psnr(_outputs(student, trace_p), reference)
    psnr_bicubic = _psnr(_bicubic(x), reference)
    report = partial(ReconstructReport, frames=n_fit, size=tuple(x.shape[-2:]), psnr_raw=psnr_raw,
                     psnr_bicubic=psnr_bicubic, calib=calib_name, settings=settings)
    if plan.units_pruned == 0:          # nothing was cut: the network is the dense one, nothing to refit
        return student.train(pruned.training), report(
            seconds=time.perf_counter() - started, psnr_after=psnr_raw, layers_refit=0, layers_kept=0,
            **_heldout(teacher, student, x_all, n_hold, same_flow))
    inputs_d = {b: trace_d.trunk_inputs(teacher, b) for b in student.trunks()}
    for steps in range(settings.rounds + 1):
        # Round r: every step's trunk reads the state the pruned network reaches r steps after a dense state
        # (r = 0: teacher-forced), so each round teaches it to pull a state drifted one step further back.
        for branch, trunk in student.trunks().items():
            inputs_p = inputs_d[branch] if steps == 0 else _rollout(student, trace_d, branch, steps).trunk_inputs(
                student, branch)
            _fit_trunk(branch, teacher.trunks()[branch], trunk, inputs_d[branch], inputs_p, kept, fitter,
                       fit_input=steps > 0)
    trace_p = _record(student, x, trace_d.flows if same_flow else None)
    _fit_head(teacher, student, trace_d, trace_p, kept, fitter)
    psnr_after = _psnr(_outputs(student, trace_p), reference)
    heldout = _heldout(teacher, student, x_all, n_hold, same_flow)
    report = report(seconds=time.perf_counter() - started, psnr_after=psnr_after, layers_refit=fitter.refit,
                    layers_kept=fitter.kept, **heldout)
    return student.train(pruned.training), report
