"""``compress``: from a checkpoint and the user's footage to one verified int8 ONNX file at a speed, with a report.

The recipe, each step an existing piece: plan the mildest rung that reaches the speed on this machine
(``speed_plan``), cut it by the ``contribution`` criterion measured on the calibration frames, reconstruct the cut
on them (``core.recover``), quantize to int8 with the guard (``core.deploy``), time the file against the dense
network (``speed``) and, if it missed, re-plan with the gain it really had; then judge the chosen file on frames
calibration never read (``judge``) and write it, the report and its picture. This module owns only the recipe
and its bookkeeping; it computes nothing of its own.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from ..errors import PlanError, UserError
from ..deploy.check import Int8OverBudget
from ..events import EventSink, Log, Progress, RunControl, ignore
from ..io.checkpoint import ReloadCheck, load_checkpoint, save_model
from ..io.output import held_output, write_bytes, write_text
from ..models.basicvsr import BasicVSR
from ..recover.reconstruct import ReconstructSettings, reconstruct
from ..recover.status import RAW_CUT_TRAINING
from ..ssl import prune_to_plan, scores_on
from .footage import Footage, read_footage
from .judge import dense_references, judge
from .request import CompressRequest, check_request, work_folder
from .report import SPEED_SLACK, Candidate, Probe, build_report
from .speed import SpeedMeasure, dense_ms, int8_conv_gain, realized_speed, remember_gain, remembered_gain
from .speed_plan import Machine, SpeedPlan, corrected_gain, flow_saving_ms, next_rung, plan_for_speed
from .step_clock import StepClock, cpu_seconds

CRITERION = "contribution"     # measured on the calibration frames: the criterion reconstruction recovers best
MAX_PROBES = 4                 # plans timed (about a CPU-minute each at 90x160) before one is given up
MAX_BUILDS = 3                 # builds: a guard refusal or a file slower than its probe moves on; three end it
BUSY_SCALE = 1.6               # dense slower than its table by more: the machine is busy (one run measured 7.3x
                               # for a cut of 2x fewer MACs under a load of 5 on 2 cores)
MIN_DISTILL_SECONDS = 60.0     # less moves the network too little to pay for quantizing, timing and judging again
DISTILLED = "distilled from the dense network on the footage's calibration frames"


class _Search:
    """Plans timed before they are built: a probe that misses the speed re-plans with the int8 gain it really had
    (its fp32 prediction against its measured time, both relative to the dense network: the machine's pace
    drifts between measurements, the ratio does not)."""

    def __init__(self, recipe: "_Recipe", scores: Any, machine: Machine, target_ms: float, speedup: float,
                 gain: float, gain_key: str) -> None:
        self.recipe, self.scores, self.machine = recipe, scores, machine
        self.target_ms, self.speedup, self.gain, self.gain_key = target_ms, speedup, gain, gain_key
        self.probes: list[Probe] = []

    def learn(self, plan: SpeedPlan, speed: SpeedMeasure) -> None:
        """Take the gain ``plan``'s int8 network really had (and keep it for the next ``compress`` here)."""
        self.gain = corrected_gain(plan, speed.speedup, self.machine.dense_ms)
        remember_gain(self.gain_key, self.gain)

    def replan(self, plan: SpeedPlan, speed: SpeedMeasure) -> SpeedPlan:
        """The next plan after ``plan`` ran at ``speed`` (``PlanError`` when none is predicted to reach)."""
        self.learn(plan, speed)
        return plan_for_speed(self.scores, self.machine, self.target_ms, self.gain, after=plan.rung)

    def timed(self, plan: SpeedPlan, dense: BasicVSR, footage: Footage) -> SpeedPlan:
        """The first plan from ``plan`` on whose probe reaches the speed; a one-line ``UserError`` naming the
        fastest timed when ``MAX_PROBES`` miss or no plan is predicted to reach any more."""
        from ..deploy.timing_probe import int8_timing_probe

        for _ in range(MAX_PROBES):
            cut = "" if plan.plan is None else f", {plan.plan.mac_ratio:.2f}x fewer MACs"
            self.recipe.say(f"timing {plan.rung.name}{cut} before building it (predicted {plan.predicted_ms:.0f} ms "
                            f"per frame for a target of {self.target_ms:.0f})")
            with self.recipe.clock.step("probe"):
                model = dense if plan.plan is None else prune_to_plan(dense, plan.plan)
                speed = realized_speed(dense, int8_timing_probe(model, footage.calibration, plan.rung.flow),
                                       self.recipe.size)
            self.probes.append(Probe(plan, speed))
            self.recipe.say(f"timed {speed.speedup:.2f}x the dense network")
            if speed.speedup >= self.speedup * SPEED_SLACK:
                self.learn(plan, speed)
                return plan
            try:
                plan = self.replan(plan, speed)
            except PlanError:
                break
        best = max(self.probes, key=lambda p: p.speed.speedup)
        raise UserError(f"compress could not reach {self.speedup:.2f}x the dense network on this machine: the fastest "
                        f"plan it timed ran {best.speed.speedup:.2f}x ({best.plan.rung.name}); ask for at most that")


@dataclass(frozen=True)
class CompressResult:
    outputs: dict[str, Path]
    chosen: Candidate
    tried: tuple[Candidate, ...]
    probes: tuple[Probe, ...]
    target_ms: float
    speedup_asked: float
    dense_ms: float
    footage: Footage
    seconds: float
    cpu_seconds: float
    steps: StepClock
    distillation: str           # what distillation did, or why it did not run
    report: dict[str, Any]

    def summary(self) -> str:
        """What was written, how fast here, how good on frames it never read (the CLI's and the app's lines)."""
        c = self.chosen
        return "\n".join([
            f"wrote {self.outputs['onnx']}: {c.plan.rung.name}, {c.speed.speedup:.2f}x the dense network at "
            f"{c.speed.size[0]}x{c.speed.size[1]} on this machine ({c.speed.model_median_ms:.0f} vs "
            f"{c.speed.dense_median_ms:.0f} ms per frame, marginal, median of {len(c.speed.dense_ms)} rounds)",
            f"int8 guard: predicted drop {c.guard.charged_drop:.2f} dB (budget {c.guard.max_drop:.2f}), "
            f"{len(c.guard.kept_float)} layers kept float",
            *(f"held out: {q.line()}" for q in c.quality),
            f"report {self.outputs['report']} and {self.outputs['picture']}"
            + (f"; float network {self.outputs['pth']}" if "pth" in self.outputs else "")
            + f"; {self.cpu_seconds / 60:.1f} CPU-minutes ({self.steps.line()}), {len(self.probes)} plan(s) "
              f"timed, {len(self.tried)} built; {self.distillation}"])


def distill_seconds(req: CompressRequest, spent: float, finish: float) -> float:
    """What ``req.minutes`` leaves to distillation after ``spent`` seconds, keeping time to quantize, time and
    judge the distilled file as long as that took the first time (``finish``), with a fifth to spare."""
    return req.minutes * 60 - spent - finish * 1.2


def training(recovery: dict[str, Any] | None) -> str:
    """A file's ``training`` meta (``core.recover.status`` reads it): distilled, or a cut nobody trained."""
    return DISTILLED if recovery and "distillation" in recovery else RAW_CUT_TRAINING


class _Recipe:
    """One ``compress`` call: the state the steps share."""

    def __init__(self, req: CompressRequest, sink: EventSink, control: RunControl | None) -> None:
        self.req, self.sink, self.control = req, sink, control
        self.started, self.cpu_started = time.perf_counter(), cpu_seconds()
        self.clock = StepClock()
        self.distillation = "no distillation: no file was chosen"

    def say(self, message: str) -> None:
        self.sink(Log(message))
        if self.control is not None:
            self.control.checkpoint()

    def cut(self, plan: SpeedPlan, dense: BasicVSR, footage: Footage) -> tuple[BasicVSR, dict[str, Any] | None]:
        """The rung's float network: the dense one itself, or its cut reconstructed on the calibration frames."""
        if plan.plan is None:
            return dense, None
        self.say(f"cutting: {plan.rung.name}, {plan.plan.mac_ratio:.2f}x fewer MACs; reconstructing on "
                 f"{len(footage.calibration)} calibration frames")
        settings = ReconstructSettings(max_frames=len(footage.calibration), holdout=0)
        with self.clock.step("reconstruct"):
            model, rec = reconstruct(dense, prune_to_plan(dense, plan.plan), plan.plan, footage.calibration, settings,
                                     calib_name=footage.source, sink=self._progress("reconstruct"),
                                     control=self.control)
        return model, {"reconstruction": rec.to_meta()}

    def _progress(self, stage: str) -> EventSink:
        def forward(event) -> None:
            if isinstance(event, Progress):
                self.sink(Progress(stage, event.iteration, event.total))
        return forward

    def finish(self, plan: SpeedPlan, model: BasicVSR, recovery: dict[str, Any] | None, dense: BasicVSR,
               footage: Footage, path: Path) -> Candidate:
        """Quantize ``model`` with the guard, time the file against ``dense``, judge it on the held-out frames."""
        from ..deploy.onnx_export import export_onnx
        from ..deploy.runtime import load_stepper

        req = self.req
        self.say(f"quantizing to int8 ({plan.rung.flow} flow), the guard's budget {req.max_drop} dB")
        meta = {"source": str(req.model), "compress": plan.rung.name, "training": training(recovery),
                **(recovery or {})}
        with self.clock.step("quantize"):
            check = export_onnx(model, path, precision="int8", calib=footage.calibration, max_drop=req.max_drop,
                                meta=meta, flow=plan.rung.flow)
        stepper = load_stepper(path)
        self.say(f"timing the file against the dense network at {self.size[0]}x{self.size[1]}")
        with self.clock.step("time files"):
            speed = realized_speed(dense, stepper, self.size)
        self.say(f"judging on {sum(len(c.frames) for c in footage.judged)} frames calibration never read")
        with self.clock.step("judge"):
            quality = judge(stepper, footage.judged, self.references)
        return Candidate(plan, speed, quality, check, path, model, recovery)

    def keep(self, candidate: Candidate) -> Candidate:
        """With ``--keep-candidates``, the float network beside its int8 file (the benches score both)."""
        if self.req.keep is not None:
            save_model(candidate.model, candidate.path.with_suffix(".pth"),
                       {"compress": candidate.plan.rung.name, "training": training(candidate.recovery)})
        return candidate

    def distil(self, chosen: Candidate, dense: BasicVSR, footage: Footage, path: Path) -> Candidate | None:
        """The chosen cut distilled on the calibration frames for the minutes left (keeping time to quantize, time
        and judge it again, as long as that took the first time), or None when too little is left."""
        from ..train.frames_distill import DistillSettings, distill

        seconds = distill_seconds(self.req, time.perf_counter() - self.started, chosen.finish_seconds)
        if chosen.plan.plan is None:
            self.distillation = "no distillation: the dense network was not cut"
            return None
        if seconds < MIN_DISTILL_SECONDS:
            self.distillation = (f"no distillation: --minutes {self.req.minutes:g} left {max(seconds, 0) / 60:.1f} min "
                                 f"after the builds (and the time to quantize, time and judge it again); it needs "
                                 f"{MIN_DISTILL_SECONDS / 60:.0f}")
            self.say(self.distillation)
            return None
        self.say(f"distilling the cut from the dense network on the calibration frames for {seconds / 60:.1f} min")
        self.distillation = f"distilled {seconds / 60:.1f} min"
        with self.clock.step("distil"):
            model, report = distill(dense, chosen.model, footage.calibration, DistillSettings(seconds),
                                    sink=self._progress("distil"), control=self.control)
        recovery = {**(chosen.recovery or {}), "distillation": report.to_meta()}
        started = time.perf_counter()
        try:
            candidate = self.finish(chosen.plan, model, recovery, dense, footage, path)
        except Int8OverBudget as refused:
            self.say(f"the distilled network: {refused}; keeping the one before it")
            self.distillation += ", refused by the int8 guard"
            return None
        return replace(candidate, finish_seconds=time.perf_counter() - started)

    def run(self, footage: Footage | None = None) -> CompressResult:
        req = self.req
        outputs = check_request(req)
        if footage is None:
            footage = read_footage(req.footage, req.calib_frames, req.judge_frames)
        loaded = load_checkpoint(req.model)
        dense = loaded.model.eval()
        self.size = tuple(req.size) if req.size is not None else footage.size
        self.say(f"footage {footage.source}: calibrating on frames [0, {len(footage.calibration)}), judging on "
                 + ", ".join(f"{j.name} [{j.first}, {j.first + len(j.frames)})" for j in footage.judged))
        from ..profile.latency import latency_table

        self.say(f"measuring this machine at {self.size[0]}x{self.size[1]} (latency table, int8 gain, flow)")
        with self.clock.step("measure machine"):
            table = latency_table("cpu", self.size, dense.spec.num_feat, dense.spec.bidirectional)
            gain_key = f"{table.key}|threads {torch.get_num_threads()}"
            gain = remembered_gain(gain_key) or int8_conv_gain(self.size)
            dense_now = dense_ms(dense, self.size)
            machine = Machine(table, dense_now / table.predict_ms(dense.spec), flow_saving_ms(dense, self.size),
                              dense_now)
        if machine.scale > BUSY_SCALE:
            self.say(f"warning: the dense network ran {machine.scale:.1f}x slower than when this machine's latency "
                     f"table was measured: other work is running, and speeds measured now are not the machine's "
                     f"(a busy CPU slows PyTorch's threads more than onnxruntime's); run compress on a quiet machine")
        target = req.target_ms if req.target_ms is not None else dense_now / req.speedup
        speedup_asked = req.speedup if req.speedup is not None else dense_now / req.target_ms
        with self.clock.step("score units"):
            scores = scores_on(dense, CRITERION, footage.calibration, footage.source)
        plan = plan_for_speed(scores, machine, target, gain)       # unreachable: refused before any cut
        with self.clock.step("judge"):
            self.references = dense_references(dense, footage.judged)
        search = _Search(self, scores, machine, target, speedup_asked, gain, gain_key)
        tried: list[Candidate] = []
        with work_folder(req.keep) as tmp:
            for index in range(MAX_BUILDS):
                plan = search.timed(plan, dense, footage)
                self.say(f"recipe {index + 1}: {plan.rung.name}, timed at "
                         f"{search.probes[-1].speed.speedup:.2f}x; building it")
                model, recovery = self.cut(plan, dense, footage)
                started = time.perf_counter()
                try:
                    candidate = self.finish(plan, model, recovery, dense, footage,
                                            Path(tmp) / f"candidate{index}.onnx")
                except Int8OverBudget as refused:
                    self.say(f"{plan.rung.name}: {refused}; the next recipe")
                    following = next_rung(plan.rung)
                    try:
                        if following is None:
                            break
                        plan = plan_for_speed(scores, machine, target, search.gain, after=following)
                    except PlanError:
                        break
                    continue
                candidate = self.keep(replace(candidate, finish_seconds=time.perf_counter() - started))
                tried.append(candidate)
                self.say(f"measured {candidate.speed.speedup:.2f}x the dense network "
                         f"({candidate.speed.model_median_ms:.0f} vs {candidate.speed.dense_median_ms:.0f} ms per frame)")
                if candidate.reaches(speedup_asked) and candidate.guard.ok:
                    break
                try:             # slower than its probe (layers the guard kept float): plan with what it had
                    plan = search.replan(candidate.plan, candidate.speed)
                except PlanError:
                    break
            chosen = next((c for c in tried if c.reaches(speedup_asked) and c.guard.ok), None)
            if chosen is None and not tried:
                raise UserError(f"compress could not make a file that passes the int8 guard's {req.max_drop} dB "
                                f"budget at {speedup_asked:.2f}x on this footage (raise --max-drop, or ask for less)")
            if chosen is None:
                best = max(tried, key=lambda c: c.speed.speedup)
                raise UserError(f"compress could not reach {speedup_asked:.2f}x the dense network on this machine: the "
                                f"fastest file it built ran {best.speed.speedup:.2f}x ({best.plan.rung.name}); ask "
                                f"for at most that")
            distilled = self.distil(chosen, dense, footage, Path(tmp) / "distilled.onnx")
            if distilled is not None:
                tried.append(self.keep(distilled))
                if distilled.reaches(speedup_asked) and distilled.guard.ok:
                    chosen = distilled
                else:
                    self.distillation += ", its file not chosen (slower than asked or refused by the guard)"
            with self.clock.step("write"):
                self._write(outputs, chosen, loaded)
        result = CompressResult(outputs, chosen, tuple(tried), tuple(search.probes), target, speedup_asked,
                                dense_now, footage, time.perf_counter() - self.started,
                                cpu_seconds() - self.cpu_started, self.clock, self.distillation, {})
        report = build_report(result, req)
        write_text(outputs["report"], json.dumps(report, indent=1), overwrite=req.overwrite,
                   inputs=[req.model, *req.footage])
        from .picture import write_picture

        write_picture(outputs["picture"], result, overwrite=req.overwrite, inputs=[req.model, *req.footage])
        return replace(result, report=report)

    def _write(self, outputs: dict[str, Path], chosen: Candidate, loaded: Any) -> None:
        from ..deploy.runtime import read_onnx

        from ..deploy.onnx_graph import with_metadata

        heldout = json.dumps([q.to_json() for q in chosen.quality])      # the judgement travels with the file
        data = with_metadata(chosen.path.read_bytes(), {"ssl_vsr.heldout": heldout})
        digest = hashlib.sha256(data).hexdigest()

        def verify(tmp: Path) -> None:
            read_onnx(tmp)                                        # loads and passes our checks
            if hashlib.sha256(tmp.read_bytes()).hexdigest() != digest:
                raise UserError(f"{outputs['onnx']}: the written file differs from the verified one")

        inputs = [self.req.model, *self.req.footage]
        write_bytes(outputs["onnx"], data, overwrite=self.req.overwrite, inputs=inputs, verify=verify)
        if "pth" in outputs:
            meta = {"source": str(loaded.path), "training": training(chosen.recovery), "compress": chosen.plan.rung.name,
                    **({"plan": chosen.plan.plan.to_json(scores=True)} if chosen.plan.plan is not None else {}),
                    **(chosen.recovery or {})}
            save_model(chosen.model, outputs["pth"], meta, overwrite=self.req.overwrite, inputs=inputs,
                       verify=ReloadCheck(chosen.model))


def compress(req: CompressRequest, sink: EventSink = ignore, control: RunControl | None = None,
             footage: Footage | None = None) -> CompressResult:
    """Run the recipe (see the module's docstring); every refusal is a one-line ``UserError`` before any work.
    ``footage``: frames already read and split (the app's current clip); otherwise ``req.footage`` is read.
    Every output is locked from the start to the end: a second compress into one of them is refused at once."""
    outputs = check_request(req)
    with contextlib.ExitStack() as held:
        for path in outputs.values():
            held.enter_context(held_output(path, inputs=[req.model, *req.footage], overwrite=req.overwrite))
        return _Recipe(req, sink, control).run(footage)
