"""Ratio sweep: PSNR, parameters, MACs and measured ms per frame for each global ratio — the paper's Fig. 3.

Each ratio is planned by the same global criterion as the app (``make_plan``), pruned physically and run over
the whole clip once: that run gives both the PSNR and the time per frame (measured as ``sr`` measures it).
Optionally each pruned network first gets a short SIR + finetune (``Budget``) through the training engine, so
the front shows what a little training buys back. Extra plans (the app's current one, with its locks and
caps) or networks (a trained pruned model the app has loaded) are measured beside the ratios.
"""
from __future__ import annotations

import copy
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping

import torch

from ..device import describe_device
from ..events import Event, EventSink, Log, Progress, RunControl, StageFinished, StageStarted, ignore
from ..models.basicvsr import BasicVSR
from ..profile.cost import param_count
from ..profile.macs import frame_macs
from ..ssl import DEFAULT_CRITERION, Plan, make_plan, prune_to_plan, scores_on
from ..ssl.plan import RECOMMENDED_ALIGN
from ..ssl.units import prunable_layers
from ..train.pipeline import run_training
from ..train.stages import sir_iterations
from .clip import Measurement, Scorer, StudyClip, warm_up
from .results import StudyError, SweepPoint, SweepResult
from .sensitivity import check_ratio
from .training import Budget, ssl_config

DEFAULT_RATIOS = (0.3, 0.5, 0.7)
MAX_RATIOS = 50


def parse_ratios(text: str) -> tuple[float, ...]:
    """'0.3,0.5,0.7' → (0.3, 0.5, 0.7); a ``StudyError`` naming the first bad item otherwise."""
    items = [t.strip() for t in str(text).split(",")]
    if not any(items):
        raise StudyError("no ratios given (e.g. --ratios 0.3,0.5,0.7)")
    out = []
    for item in items:
        try:
            value = float(item)
        except ValueError:
            raise StudyError(f"ratio {item!r} is not a number (e.g. --ratios 0.3,0.5,0.7)") from None
        out.append(check_ratio(value))
    return check_ratios(out)


def check_ratios(ratios) -> tuple[float, ...]:
    ratios = tuple(sorted({check_ratio(r) for r in ratios}))
    if not ratios:
        raise StudyError("a sweep needs at least one ratio")
    if len(ratios) > MAX_RATIOS:
        raise StudyError(f"{len(ratios)} ratios: a sweep takes at most {MAX_RATIOS}")
    return ratios


def _point(label: str, ratio: float, net: BasicVSR, dense_units: int, size: tuple[int, int], m: Measurement,
           trained: bool = False, zero_shot: float | None = None) -> SweepPoint:
    """A sweep point from the network actually measured (its own spec gives parameters, MACs and units)."""
    macs, spy = frame_macs(net.spec, *size)
    achieved = 1.0 - _units(net) / dense_units
    return SweepPoint(label, ratio, achieved, param_count(net.spec), macs, spy, m.ms_per_frame, m.psnr, trained,
                      zero_shot)


def network_point(label: str, net: BasicVSR, dense: BasicVSR, size: tuple[int, int], psnr: float,
                  ms_per_frame: float, ratio: float | None = None) -> SweepPoint:
    """A sweep point for a network measured elsewhere (the app's figure of a loaded model): its parameters, MACs
    and achieved ratio from its own spec, its PSNR and time as given (they must follow the sweep's rule)."""
    achieved = 1.0 - _units(net) / _units(dense)
    return _point(label, achieved if ratio is None else ratio, net, _units(dense), size,
                  Measurement(psnr, ms_per_frame, None))


def _units(net: BasicVSR) -> int:
    return sum(l.size for l in prunable_layers(net.spec))


class _Steps:
    """Progress over the whole sweep: networks run × frames, so the bar moves inside each long run."""

    def __init__(self, sink: EventSink, total_runs: int, frames: int) -> None:
        self.sink, self.frames, self.total = sink, frames, total_runs * frames
        self.done_runs = 0

    def callback(self):
        base = self.done_runs * self.frames
        return lambda done, total: self.sink(Progress("sweep", min(base + int(done * self.frames / max(total, 1)),
                                                                    self.total), self.total))

    def finish_run(self, psnr: float) -> None:
        self.done_runs += 1
        self.sink(Progress("sweep", self.done_runs * self.frames, self.total, {"psnr": psnr}))


def run_sweep(model: BasicVSR, clip: StudyClip, *, ratios=DEFAULT_RATIOS, criterion: str = DEFAULT_CRITERION,
              align: int = RECOMMENDED_ALIGN, device: torch.device | str = "cpu", y: bool = True,
              checkpoint: str = "", extra: Mapping[str, Plan | BasicVSR] | None = None, budget: Budget | None = None,
              sink: EventSink = ignore, control: RunControl | None = None) -> SweepResult:
    """Measure the dense model, every ratio, and every ``extra`` plan (pruned here) or network (as it is) on ``clip``.

    With ``budget`` each pruned network is the result of SIR + finetune from ``checkpoint`` (a model file) at
    that ratio instead of zero-shot pruning; the result states the budget.
    """
    ratios = check_ratios(ratios)
    if budget is not None and not (checkpoint and Path(checkpoint).is_file()):
        raise StudyError("training in a sweep needs the checkpoint file the sweep starts from")
    device = torch.device(device)
    dense = copy.deepcopy(model).eval()
    scores = scores_on(dense, criterion, clip.lr, clip.name)
    size = (int(clip.lr.shape[1]), int(clip.lr.shape[2]))
    extra = dict(extra or {})
    for name, plan in extra.items():
        if isinstance(plan, Plan) and plan.spec_before.with_(meta={}) != dense.spec.with_(meta={}):
            raise StudyError(f"plan {name!r} was made for a different network than the sweep's")
    scorer = Scorer(clip, device, y, control)
    steps = _Steps(sink, 1 + len(ratios) + len(extra), len(clip.lr))
    sink(StageStarted("sweep", steps.total))
    notes = list(clip.notes)
    if clip.gt is None:
        notes.append("no ground truth: PSNR is measured against the dense model's output")
        sink(Log("sweep: the clip has no ground truth; measuring against the dense model's output"))
    start = time.perf_counter()
    warm_up(dense, clip, device)
    base = scorer.run(dense, steps.callback())
    scorer.set_reference(base.frames)
    steps.finish_run(base.psnr)
    dense_units = _units(dense)
    points = [_point("dense", 0.0, dense, dense_units, size, base)]
    training = None
    for ratio in ratios:
        plan = make_plan(scores, ratio, align=align, frame_size=size)
        pruned = prune_to_plan(dense, plan)
        zero_shot = None
        if budget is not None:
            zero_shot = scorer.run(pruned).psnr
            pruned, training = _train(checkpoint, budget, ratio, align, sink, control)
        warm_up(pruned, clip, device)
        m = scorer.run(pruned, steps.callback())
        points.append(_point(f"ratio {ratio:g}", ratio, pruned, dense_units, size, m, budget is not None,
                             zero_shot))
        steps.finish_run(m.psnr)
    for name, item in extra.items():
        pruned = prune_to_plan(dense, item) if isinstance(item, Plan) else copy.deepcopy(item).eval()
        ratio = item.requested_ratio if isinstance(item, Plan) else 1.0 - _units(pruned) / dense_units
        warm_up(pruned, clip, device)
        m = scorer.run(pruned, steps.callback())
        points.append(_point(name, ratio, pruned, dense_units, size, m))
        steps.finish_run(m.psnr)
    sink(StageFinished("sweep"))
    return SweepResult(checkpoint, clip.info(y), criterion, align, tuple(points), describe_device(device),
                       time.perf_counter() - start, training, tuple(notes))


def _train(checkpoint: str, budget: Budget, ratio: float, align: int, sink: EventSink,
           control: RunControl | None) -> tuple[BasicVSR, dict[str, Any]]:
    """SIR + finetune at ``ratio`` in a scratch run folder: the trained network and the budget actually run."""
    cfg = ssl_config(budget, str(Path(checkpoint).resolve()), ratio, align)

    def relay(e: Event) -> None:          # the sweep's own bar stays the sweep's; training's lines go through
        if isinstance(e, Log):
            sink(e)

    with tempfile.TemporaryDirectory(prefix="ssl-vsr-sweep-") as tmp:
        result = run_training(cfg, Path(tmp) / "run", relay, control)
    described = {**budget.to_json(), "sir_iterations_run": sir_iterations(cfg.sir),
                 "finetune_iterations_run": cfg.finetune.iterations, "engine": "core.train.run_training",
                 "recipe": "per ratio: SIR from the checkpoint, physical pruning, finetune with TF"}
    return result.model, described
