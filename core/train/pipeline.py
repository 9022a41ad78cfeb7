"""``run_training``: pretrain → SIR or prune → finetune as the config says, resumable, writing the run folder.

Two stages cut the network: ``sir`` (SIR, then the cut of what it drove to zero) and ``prune`` (the cut
``prune`` makes, no SIR: units ranked by the criterion, the cut reconstructed on LR frames).

Run folder layout (every file built under a temporary name and moved into place, never through a link; only rank
0 writes; a live run locks the folder itself, see core.train.runfolder). The
folder may hold the user's own files (their commented config.yaml, notes): the run writes only these names and a
new run refuses a folder where any of them already exists.

    .ssl-vsr-run           marks the folder as a run (resume refuses folders without it), records which of these
                           names the run wrote (core.train.runmarker), and marks a finished run
    run_config.yaml        the resolved config (its own name: a user's config.yaml beside it is never rewritten)
    train.log              one line per event
    checkpoints/<stage>_last.pth   resumable state of each stage
    dense.pth              the unpruned network that entered SIR (the TF teacher)
    sir_pruned.pth         the network right after SIR and physical pruning
    cut.pth                the prune stage's cut, reconstructed (read back when a run resumes)
    finetune_best.pth      best validation weights of finetuning (pretrain_best.pth likewise)
    pruned.pth             the final network (model file, with the plan in its meta)
    report.h5              plan, |γ| scores, kept indices, MACs, metrics
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..device import resolve_device
from ..errors import ConfigError
from ..events import EventSink, Log, RunControl, every_step, ignore
from ..io.output import write_text
from ..io.checkpoint import load_checkpoint, save_model
from ..io.demo import calib_clip_name
from ..io.frames import tensor_to_frames
from ..io.weights import weights_file
from ..metrics import psnr
from ..models.basicvsr import BasicVSR
from ..models.spec import dense_spec
from ..data.calib import check_frames
from ..recover.reconstruct import ReconstructSettings, reconstruct
from ..recover.status import RAW_CUT_TRAINING, RECONSTRUCTION_KEY
from ..ssl import (Plan, attach_scale_factors, compute_scores, get_criterion, plan_from_json, plan_with,
                   prune_to_plan, scores_on)
from ..ssl.activity import ActivityStats, measure_activity
from ..deploy.export import write_report_h5
from .config import TrainConfig, plan_settings
from .config_load import dump_config
from .data import build_data
from .distributed import DistInfo, barrier, init_distributed, shutdown
from .logfile import LogFile, tee
from .resume_config import check_resume_config
from .run_inputs import (CUT_FILE, DENSE_FILE, check_run_inputs, reconstruct_settings, resumes_cut,
                         weights_path)
from .runfolder import RUN_CONFIG, check_run_dir, check_run_paths, finish_marker, hold_run_dir, start_marker
from .runmarker import record_output
from .runtime import RunContext, amp_dtype
from .stages import SIRStage, SupervisedStage
from .state import load_state, model_from_state, state_path

ACTIVITY_SAMPLES = 8      # training samples a criterion measured on frames sees at the start of SIR


@dataclass
class TrainResult:
    """What a run produced (paths are None for outputs the chosen stages do not make)."""

    run_dir: Path
    pruned_model: Path | None
    report: Path | None
    last_checkpoint: Path | None
    best_model: Path | None = None
    dense_model: Path | None = None
    log: Path | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    model: BasicVSR | None = field(default=None, repr=False)   # the final network, in memory


def _plan_metrics(plan: Plan) -> dict[str, int]:
    return {"params_before": plan.before.params, "params_after": plan.after.params,
            "macs_before": plan.before.macs, "macs_after": plan.after.macs}


@dataclass(frozen=True)
class GivenCut:
    """A cut made before the run: its plan, the network and the meta its file records (how it was made)."""

    plan: Plan
    model: BasicVSR
    meta: dict[str, Any]


def run_training(config: TrainConfig, run_dir: str | Path, sink: EventSink = ignore,
                 control: RunControl | None = None, resume: bool = False,
                 cut: GivenCut | None = None) -> TrainResult:
    """Run the configured stages in ``run_dir``; with ``resume`` continue from the states found there.

    ``cut``: the prune stage's plan and cut, already made (the app's Prune step reconstructed it minutes ago):
    the stage keeps it instead of measuring, cutting and reconstructing again.

    Every input is checked before the first iteration. The main process holds the run folder's lock until it
    returns. Raises ``UserError`` for bad input, a folder in use or a diverged run (``RunFinished`` when
    resuming a finished run, which is left unchanged), ``Cancelled`` after saving state when ``control`` cancels.
    """
    run_dir = Path(run_dir)
    check_run_paths(config, run_dir)
    check_run_dir(run_dir, resume)          # read-only: a refused folder is left exactly as it was
    if resume:
        check_resume_config(config, run_dir)
    dist, device = init_distributed(resolve_device(config.runtime.device))
    try:
        with hold_run_dir(run_dir, resume) if dist.is_main else contextlib.nullcontext():
            log = LogFile(run_dir / "train.log")
            run = _Run(config, run_dir, dist, device, tee(sink, log) if dist.is_main else ignore, control, resume,
                       cut)
            run.check_inputs()              # a refused plan, input or data set leaves the folder as it was: no
            run.build_data()                # marker, no log (its lines are held until the marker is written)
            if dist.is_main:
                if not resume:
                    start_marker(run_dir)   # checked under the lock: ours or absent
                log.release()
            result = run.run()
            if dist.is_main:
                finish_marker(run_dir)
            return result
    finally:
        shutdown(dist)


class _Run:
    """One call of ``run_training``: the stages in order, each resumed or started."""

    def __init__(self, cfg: TrainConfig, run_dir: Path, dist: DistInfo, device: torch.device, sink: EventSink,
                 control: RunControl | None, resume: bool, cut: GivenCut | None = None) -> None:
        self.cfg, self.resume, self._given_cut = cfg, resume, cut
        self.ctx = RunContext(cfg, run_dir, device, dist, sink, control, amp_dtype(cfg.runtime.amp, device))
        self.result = TrainResult(run_dir, None, None, None, log=run_dir / "train.log")
        self.plan: Plan | None = None
        self._calib = None         # prune.calib's frames, read with the other inputs before any work
        self._cut_meta: dict[str, Any] | None = None    # the prune stage's cut.pth meta

    @property
    def main(self) -> bool:
        return self.ctx.dist.is_main

    def build_data(self) -> None:
        """The clips found, checked and cached (``data.cache``): a broken frame refuses the run here."""
        self.data, self.valset = build_data(self.cfg, self.ctx.dist, self.ctx.emit)

    def run(self) -> TrainResult:
        cfg, ctx = self.cfg, self.ctx
        if self.main and not (self.resume and (ctx.run_dir / RUN_CONFIG).is_file()):   # a resume's is the same
            record_output(ctx.run_dir, RUN_CONFIG)
            write_text(ctx.run_dir / RUN_CONFIG, dump_config(cfg), overwrite=True)
        torch.manual_seed(cfg.runtime.seed)
        model = None
        if "pretrain" in cfg.stages:
            model = self._pretrain()
        if "sir" in cfg.stages:
            model = self._sir(model)
        if "prune" in cfg.stages:
            model = self._prune(model)
        if "finetune" in cfg.stages:
            model = self._finetune(model)
        self._finish(model)
        return self.result

    # -- inputs ------------------------------------------------------------------------------------
    def check_inputs(self) -> None:
        """Every file the run will read, read now (``run_inputs``); ``prune.calib``'s frames are kept."""
        self._calib = check_run_inputs(self.cfg, self.ctx.run_dir, self.ctx.dist.world, self.resume)

    def _source_model(self) -> BasicVSR:
        m = self.cfg.model
        if m.weights is None:
            return BasicVSR(dense_spec(m.variant, m.num_feat, m.num_block))
        return load_checkpoint(weights_path(self.cfg)).model

    def _state(self, stage: str) -> dict[str, Any] | None:
        path = state_path(self.ctx.run_dir, stage)
        return load_state(path) if self.resume and path.is_file() else None

    # -- stages ------------------------------------------------------------------------------------
    def _pretrain(self) -> BasicVSR:
        state = self._state("pretrain")
        model = model_from_state(state) if state else self._source_model()
        stage = SupervisedStage(self.ctx, "pretrain", model, self.data, self.cfg.pretrain, self.valset)
        stage.run(state)
        self._save(stage.model, self._dense_path, {"stage": "pretrain"})
        return stage.model

    def _activity(self, model: BasicVSR, criterion: str) -> ActivityStats | None:
        """For a criterion measured on frames: ``model`` on the first training samples' LR clips (up to
        ``ACTIVITY_SAMPLES`` of them, as one batch), else None."""
        if not get_criterion(criterion).needs_frames:
            return None
        n = min(ACTIVITY_SAMPLES, len(self.data))
        lr = torch.stack([self.data[i][0] for i in range(n)]).float().div_(255.0)
        return measure_activity(model, lr.to(self.ctx.device), "training data")

    @property
    def _dense_path(self) -> Path:
        return self.ctx.run_dir / DENSE_FILE

    def _sir(self, model: BasicVSR | None) -> BasicVSR:
        cfg, ctx = self.cfg.sir, self.ctx
        if self.resume and self._dense_path.is_file():
            model = load_checkpoint(self._dense_path).model      # the exact network SIR started from
        elif model is None:
            model = self._source_model()
        settings = plan_settings(cfg, model.spec)          # the user's plan: ratio, criterion, width multiple, locks, caps
        sir_plan = plan_with(compute_scores(model, settings.criterion, self._activity(model, settings.criterion)),
                             settings)
        _refuse_empty(sir_plan)         # before dense.pth: a refused plan leaves nothing that blocks a restart
        self._save(model, self._dense_path, {"stage": "dense", "source": self.cfg.model.weights}, overwrite=False)
        attach_scale_factors(model)
        stage = SIRStage(ctx, model, self.data, sir_plan)
        stage.run(self._state("sir"))
        regularized = stage.model.eval()
        stats = stage.sir.stats()
        # The cut removes exactly the units SIR drove to zero (a resumed run's are in its saved state), so
        # locks and caps hold in the result; the stored plan shows their |γ| scores.
        self.plan = sir_plan.cut_as(stage.sir.pruned_units(), compute_scores(regularized, "scale"))
        pruned = prune_to_plan(regularized, self.plan)
        fidelity = _output_psnr(regularized, pruned, self.data[0][0], ctx.device)
        self.result.metrics.update({"sir_gamma_pruned": stats.gamma_pruned, "sir_gamma_kept": stats.gamma_kept,
                                    "sir_final_lambda": stats.mean_lambda, "prune_fidelity_psnr": fidelity,
                                    **_plan_metrics(self.plan)})
        ctx.emit(Log(f"[sir] mean |gamma| of pruned units {stats.gamma_pruned:.4g} vs kept {stats.gamma_kept:.4g}; "
                     f"physical pruning changes the output by {fidelity:.2f} dB PSNR; parameters "
                     f"{self.plan.before.params:,} -> {self.plan.after.params:,}"))
        self._save(pruned, ctx.run_dir / "sir_pruned.pth", {"stage": "sir", "plan": self.plan.to_json(scores=True)})
        return pruned

    @property
    def _cut_path(self) -> Path:
        return self.ctx.run_dir / CUT_FILE

    @property
    def _resumes_cut(self) -> bool:
        return resumes_cut(self.cfg, self.ctx.run_dir, self.resume)

    @property
    def _reconstruct_settings(self) -> ReconstructSettings:
        return reconstruct_settings(self.cfg)

    def _calibration(self) -> tuple[np.ndarray, str]:
        """(uint8 (T, h, w, 3) LR frames, their name): ``prune.calib``'s, else the first training clip's."""
        if self._calib is not None:
            return self._calib, calib_clip_name(self.cfg.prune.calib)
        clip = self.data.clips[0]                  # lr-only data (the config refuses others without prune.calib)
        n = min(clip.frames, self._reconstruct_settings.frames_to_read)
        frames = clip.read(0, n, (0, 0, *clip.size))
        return check_frames(frames, f"calibration clip {clip.name} (the first training clip)"), clip.name

    def _prune(self, model: BasicVSR | None) -> BasicVSR:
        """The cut ``prune`` makes: units ranked by the plan's criterion (measured on the calibration frames when
        it needs frames), cut, and the cut reconstructed to the dense network's activations on those frames."""
        ctx, cfg = self.ctx, self.cfg.prune
        if self._resumes_cut:              # the cut of the run being resumed, exactly as finetuning began from it
            loaded = load_checkpoint(self._cut_path)
            self.plan, self._cut_meta = plan_from_json(loaded.meta["plan"]), loaded.meta
            return loaded.model
        dense = (model if model is not None else self._source_model()).to(ctx.device).eval()
        self._save(dense, self._dense_path, {"stage": "dense", "source": self.cfg.model.weights}, overwrite=False)
        if self._given_cut is not None:
            given = self._given_cut
            self.plan, meta = given.plan, {"stage": "prune", **given.meta, "plan": given.plan.to_json(scores=True)}
            ctx.emit(Log("[prune] the cut made before the run is used (not measured, cut or reconstructed again)"))
            self.result.metrics.update(_plan_metrics(self.plan))
            self._save(given.model, self._cut_path, meta)
            self._cut_meta = meta
            return given.model.to(ctx.device)
        settings = plan_settings(self.cfg.sir, dense.spec)
        frames, name = self._calibration()
        self.plan = plan_with(scores_on(dense, settings.criterion, frames, name), settings)
        _refuse_empty(self.plan)
        cut = prune_to_plan(dense, self.plan)
        meta: dict[str, Any] = {"stage": "prune", "training": RAW_CUT_TRAINING, "plan": self.plan.to_json(scores=True)}
        if cfg.reconstruct:
            cut, report = reconstruct(dense, cut, self.plan, frames, self._reconstruct_settings, calib_name=name,
                                      sink=every_step(ctx.emit), control=ctx.control)      # a log line per 5 %
            meta[RECONSTRUCTION_KEY] = report.to_meta()
            self.result.metrics.update({"reconstruct_psnr_vs_dense": report.psnr_after,
                                        "reconstruct_psnr_vs_dense_heldout": report.psnr_heldout})
            ctx.emit(Log(f"[prune] {report.summary()}"))
        self.result.metrics.update(_plan_metrics(self.plan))
        ctx.emit(Log(f"[prune] {settings.criterion} at ratio {settings.ratio:g}: parameters "
                     f"{self.plan.before.params:,} -> {self.plan.after.params:,}"
                     + ("" if cfg.reconstruct else " (raw cut, not reconstructed)")))
        self._save(cut, self._cut_path, meta)
        self._cut_meta = meta
        return cut

    def _finetune(self, model: BasicVSR | None) -> BasicVSR:
        cfg = self.cfg.finetune
        state = self._state("finetune")
        if state is not None:
            model = model_from_state(state)
        elif model is None:
            model = self._source_model()
        teacher = None
        if cfg.tf_weight > 0:
            teacher_path = weights_file(cfg.teacher, "finetune.teacher") if cfg.teacher else self._dense_path
            teacher = load_checkpoint(teacher_path).model
        stage = SupervisedStage(self.ctx, "finetune", model, self.data, cfg, self.valset, teacher)
        stage.run(state)
        if stage.history:
            self.result.best_model = stage.best_path
            self.result.metrics.update({"val_psnr_best": stage.best_psnr,
                                        "val_psnr_history": np.asarray(stage.history, dtype=np.float64)})
        return stage.model

    # -- outputs -----------------------------------------------------------------------------------
    def _save(self, model: BasicVSR, path: Path, meta: dict[str, Any], overwrite: bool = True) -> None:
        if self.main and (overwrite or not path.is_file()):
            record_output(self.ctx.run_dir, path.name)
            save_model(model, path, meta, overwrite=True)    # the run's own file
        barrier(self.ctx.dist)

    def _finish(self, model: BasicVSR) -> None:
        ctx, res = self.ctx, self.result
        last = self.cfg.stages[-1]
        res.last_checkpoint = state_path(ctx.run_dir, last)
        res.dense_model = self._dense_path if self._dense_path.is_file() else None
        res.model = model.cpu().eval()
        if last == "pretrain":
            res.pruned_model = None
            return
        meta = {"stages": self.cfg.stages, "plan": None if self.plan is None else self.plan.to_json(scores=True),
                "config": self.cfg.to_dict()}
        if self._cut_meta is not None:      # how the prune stage made the network (untrained if it ran last)
            keys = (RECONSTRUCTION_KEY, "training") if last == "prune" else (RECONSTRUCTION_KEY,)
            meta.update({k: self._cut_meta[k] for k in keys if k in self._cut_meta})
        res.pruned_model = ctx.run_dir / "pruned.pth"
        res.report = ctx.run_dir / "report.h5"
        self._save(res.model, res.pruned_model, meta)
        if self.main:
            record_output(ctx.run_dir, res.report.name)
            write_report_h5(res.report, self.plan, _numeric(res.metrics),
                            {"stages": self.cfg.stages, "pruned_model": str(res.pruned_model),
                             "config": self.cfg.to_dict()})
        barrier(ctx.dist)


def _refuse_empty(plan: Plan) -> None:
    """A cutting stage whose plan prunes nothing is a config mistake, said before any training."""
    if plan.units_pruned == 0:
        s = plan.settings
        raise ConfigError(f"the plan prunes no unit of this network (sir.ratio {s.ratio}, sir.align {s.align} rounds "
                          f"every layer back to its full width): raise sir.ratio or lower sir.align")


def _numeric(metrics: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float, np.ndarray))}


@torch.no_grad()
def _output_psnr(a: BasicVSR, b: BasicVSR, lq_uint8: torch.Tensor, device: torch.device) -> float:
    """PSNR (dB, RGB, uint8 outputs, whole clip) between two networks' outputs: how much pruning changed."""
    x = lq_uint8.unsqueeze(0).to(device).float().div_(255.0)
    fa = tensor_to_frames(a.to(device).eval()(x))
    fb = tensor_to_frames(b.to(device).eval()(x))
    return psnr(fa.reshape(-1, *fa.shape[2:]), fb.reshape(-1, *fb.shape[2:]))
