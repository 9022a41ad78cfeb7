"""The three stages: SIR on the scale factors, and supervised training (pretrain / finetune with TF).

SIR and finetune can also distil from the dense network (``sir.distill`` / ``finetune.distill``): the frozen
teacher runs on the same LR patch every iteration (on the fly: patches are drawn at random and never repeat, so
there is nothing to cache) and the student is pulled towards its SR frames and its hidden states at every
recurrent step. That is what trains on LR clips with no GT (``data.kind = lr-only``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data.patches import LRPatches, TrainPatches
from ..errors import ConfigError
from ..events import Log, SparsityUpdate, Validation
from ..io.checkpoint import load_checkpoint, save_model
from ..io.weights import weights_file
from ..models.basicvsr import BasicVSR
from ..ssl import SIR, Plan, SIRSettings, scale_factors
from .config import FinetuneConfig, PretrainConfig, SIRConfig, TrainConfig, gt_weight
from .distributed import barrier
from .losses import LossWeights, charbonnier, distill_loss
from .loop import Stage
from .runtime import RunContext
from .runmarker import record_output
from .validate import ValSet, validation_psnr


def sir_settings(cfg: SIRConfig) -> SIRSettings:
    return SIRSettings(delta=cfg.delta, t1=cfg.t1, tau=cfg.tau, stabilize_iters=cfg.stabilize_iters)


def sir_iterations(cfg: SIRConfig) -> int:
    """Iterations until SIR is done: λ reaches τ (added up exactly as ``SIR.step`` does), then stabilization."""
    lam, steps = 0.0, 0
    while lam < cfg.tau:
        lam += cfg.delta
        steps += 1
    return steps * cfg.t1 + cfg.stabilize_iters


def stage_iterations(cfg: TrainConfig, stage: str) -> int | None:
    """How many iterations ``stage`` runs under ``cfg`` (None for a stage without a training loop): what a saved
    state must have been saved for to be resumed (checked before a resume writes anything)."""
    totals = {"pretrain": cfg.pretrain.iterations, "sir": sir_iterations(cfg.sir),
              "finetune": cfg.finetune.iterations}
    return totals.get(stage)


DENSE_FILE = "dense.pth"      # where the run keeps the network that entered SIR (core.train.pipeline writes it)


def loss_weights(cfg: SIRConfig | FinetuneConfig, has_gt: bool, tf_weight: float = 0.0) -> LossWeights:
    """The loss terms of a SIR or finetune stage and their weights, from its ``distill`` section."""
    d = cfg.distill
    return LossWeights(gt_weight(d, has_gt), d.sr_weight, d.hidden_weight, tf_weight)


def frozen_teacher(ctx: RunContext, student: BasicVSR, weights: LossWeights, teacher: BasicVSR | None,
                   path: str | Path | None = None) -> BasicVSR:
    """The dense teacher, frozen, in eval mode, on the run's device: ``teacher`` itself, else the model file at
    ``path``, else the network that entered SIR (``run_dir/dense.pth``). Hidden-state terms need the student's
    stream width and branches (pruning keeps both); a teacher without them is refused in one line."""
    if teacher is None:
        teacher = load_checkpoint(path or ctx.run_dir / DENSE_FILE).model
    if (weights.hidden > 0 or weights.tf > 0) and (teacher.num_feat, teacher.bidirectional) != (
            student.num_feat, student.bidirectional):
        def kind(m: BasicVSR) -> str:
            return f"{m.num_feat}-channel {'bidirectional' if m.bidirectional else 'forward-only'}"
        raise ConfigError(f"the teacher is a {kind(teacher)} network but the student a {kind(student)} one: hidden "
                          f"states cannot be compared (set distill.hidden_weight and tf_weight to 0, or give the "
                          f"student's own dense network as teacher)")
    teacher = teacher.to(ctx.device).eval().requires_grad_(False)
    if ctx.config.runtime.channels_last:
        teacher = teacher.to(memory_format=torch.channels_last)
    return teacher


def _describe(name: str, w: LossWeights) -> str:
    parts = [f"{w.gt:g} x Charbonnier to GT"] if w.gt > 0 else []
    parts += [f"{w.sr:g} x Charbonnier to the teacher's SR frames"] if w.sr > 0 else []
    parts += [f"{w.hidden:g} x MSE to the teacher's hidden states at every step"] if w.hidden > 0 else []
    parts += [f"{w.tf:g} x TF (final hidden states)"] if w.tf > 0 else []
    return f"[{name}] loss: " + " + ".join(parts)


def _network_params(model: BasicVSR) -> list[nn.Parameter]:
    """Every weight except SpyNet's and the scale factors."""
    gammas = {id(g) for g in scale_factors(model).values()}
    return [p for n, p in model.named_parameters() if not n.startswith("spynet.") and id(p) not in gammas]


class SIRStage(Stage):
    """Scale factors on, λ·γ_S penalty on the units the plan selected, SpyNet frozen, constant Adam lr."""

    name = "sir"

    def __init__(self, ctx: RunContext, model: BasicVSR, data: TrainPatches | LRPatches, plan: Plan,
                 teacher: BasicVSR | None = None) -> None:
        cfg = ctx.config.sir
        super().__init__(ctx, model, sir_iterations(cfg), data)
        self.cfg: SIRConfig = cfg
        self.sir = SIR(self.model, plan, sir_settings(cfg))
        self.weights = loss_weights(cfg, data.has_gt)
        self.teacher = None     # ``teacher``, or the network that entered SIR (run_dir/dense.pth)
        if self.weights.needs_teacher:
            self.teacher = frozen_teacher(ctx, self.model, self.weights, teacher)
            ctx.emit(Log(_describe(self.name, self.weights)))

    def optimizer(self) -> tuple[torch.optim.Optimizer, None]:
        gammas = list(scale_factors(self.model).values())
        groups = [{"params": _network_params(self.model), "lr": self.cfg.lr},
                  {"params": gammas, "lr": self.cfg.gamma_lr or self.cfg.lr}]
        return torch.optim.Adam(groups, betas=tuple(self.cfg.betas)), None

    def loss(self, net: nn.Module, lq: torch.Tensor, gt: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if self.teacher is not None:
            return distill_loss(net, self.teacher, lq, gt, self.weights, self.cfg.charbonnier_eps)
        pix = charbonnier(net(lq), gt, self.cfg.charbonnier_eps)
        return (pix, {}) if self.weights.gt == 1 else (self.weights.gt * pix, {"pix": pix})

    def after_backward(self) -> None:
        self.sir.apply_penalty()

    def after_step(self, done: int) -> None:
        self.sir.step()
        if done % self.ctx.config.runtime.log_every == 0 or done == self.total:
            s = self.sir.stats()
            self.ctx.emit(SparsityUpdate(self.name, done, s.mean_lambda, s.gamma_pruned, s.gamma_kept, s.phase))

    def extra_state(self) -> dict[str, Any]:
        return {"sir": self.sir.state_dict()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.sir.load_state_dict(state["sir"])


class SupervisedStage(Stage):
    """Charbonnier (+ λ_TF · TF, + distillation against a frozen teacher), Adam with cosine annealing, SpyNet at
    its own rate.

    ``pretrain`` trains a dense network (SpyNet frozen for its first iterations, as BasicSR does);
    ``finetune`` trains the pruned one. Validation every ``val.every`` iterations keeps the best weights.
    TF runs when a ``teacher`` is given (the pipeline gives one when λ_TF > 0); ``finetune.distill`` loads the
    teacher itself when none is given (``finetune.teacher``, else the network that entered SIR).
    """

    def __init__(self, ctx: RunContext, name: str, model: BasicVSR, data: TrainPatches | LRPatches,
                 cfg: PretrainConfig | FinetuneConfig, valset: ValSet | None = None,
                 teacher: BasicVSR | None = None) -> None:
        super().__init__(ctx, model, cfg.iterations, data)
        self.name = name
        self.cfg = cfg
        self.valset = valset
        distill = isinstance(cfg, FinetuneConfig) and (cfg.distill.sr_weight > 0 or cfg.distill.hidden_weight > 0)
        self.tf_weight = getattr(cfg, "tf_weight", 0.0) if teacher is not None or distill else 0.0
        self.weights = (loss_weights(cfg, data.has_gt, self.tf_weight) if isinstance(cfg, FinetuneConfig)
                        else LossWeights())
        self.teacher = None
        if self.weights.needs_teacher:
            path = getattr(cfg, "teacher", None)
            path = weights_file(path, "finetune.teacher") if path else None
            self.teacher = frozen_teacher(ctx, self.model, self.weights, teacher, path)
            if distill:
                ctx.emit(Log(_describe(self.name, self.weights)))
        self.best_psnr = float("-inf")
        self.history: list[list[float]] = []

    @property
    def best_path(self):
        return self.ctx.run_dir / f"{self.name}_best.pth"

    def spynet_trainable(self, iteration: int) -> bool:
        return self.cfg.spynet_lr > 0 and iteration >= self.cfg.spynet_frozen_iters

    def optimizer(self) -> tuple[torch.optim.Optimizer, Any]:
        groups = [{"params": _network_params(self.model), "lr": self.cfg.lr},
                  {"params": list(self.model.spynet.parameters()), "lr": self.cfg.spynet_lr}]
        opt = torch.optim.Adam(groups, betas=tuple(self.cfg.betas))
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=self.total, eta_min=self.cfg.eta_min)
        return opt, sched

    def loss(self, net: nn.Module, lq: torch.Tensor, gt: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if self.teacher is not None:
            return distill_loss(net, self.teacher, lq, gt, self.weights, self.cfg.charbonnier_eps)
        pix = charbonnier(net(lq), gt, self.cfg.charbonnier_eps)
        return (pix, {}) if self.weights.gt == 1 else (self.weights.gt * pix, {"pix": pix})

    def after_step(self, done: int) -> None:
        every = self.ctx.config.val.every
        if self.valset is not None and (done % every == 0 or done == self.total):
            self.validate(done)

    def validate(self, done: int) -> None:
        """Score the validation clips (rank 0), report, and keep the best weights as a model file."""
        ctx = self.ctx
        if ctx.dist.is_main:
            score = validation_psnr(self.model, self.valset, ctx.device, ctx.autocast)
            self.history.append([done, score])
            ctx.emit(Validation(self.name, done, score))
            if score > self.best_psnr:
                self.best_psnr = score
                record_output(ctx.run_dir, self.best_path.name)
                save_model(self.model, self.best_path, {"stage": self.name, "iteration": done, "val_psnr": score},
                           overwrite=True)
        barrier(ctx.dist)

    def extra_state(self) -> dict[str, Any]:
        return {"best_psnr": self.best_psnr, "history": self.history}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.best_psnr = float(state["best_psnr"])
        self.history = [list(h) for h in state["history"]]
