"""The three stages: SIR on the scale factors, and supervised training (pretrain / finetune with TF)."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..data.datasets import TrainPatches
from ..events import SparsityUpdate, Validation
from ..io.checkpoint import save_model
from ..models.basicvsr import BasicVSR
from ..ssl import SIR, Plan, SIRSettings, scale_factors
from .config import FinetuneConfig, PretrainConfig, SIRConfig
from .distributed import barrier
from .losses import charbonnier, tf_loss
from .loop import Stage
from .runtime import RunContext
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


def _network_params(model: BasicVSR) -> list[nn.Parameter]:
    """Every weight except SpyNet's and the scale factors."""
    gammas = {id(g) for g in scale_factors(model).values()}
    return [p for n, p in model.named_parameters() if not n.startswith("spynet.") and id(p) not in gammas]


class SIRStage(Stage):
    """Scale factors on, λ·γ_S penalty on the units the plan selected, SpyNet frozen, constant Adam lr."""

    name = "sir"

    def __init__(self, ctx: RunContext, model: BasicVSR, data: TrainPatches, plan: Plan) -> None:
        cfg = ctx.config.sir
        super().__init__(ctx, model, sir_iterations(cfg), data)
        self.cfg: SIRConfig = cfg
        self.sir = SIR(self.model, plan, sir_settings(cfg))

    def optimizer(self) -> tuple[torch.optim.Optimizer, None]:
        gammas = list(scale_factors(self.model).values())
        groups = [{"params": _network_params(self.model), "lr": self.cfg.lr},
                  {"params": gammas, "lr": self.cfg.gamma_lr or self.cfg.lr}]
        return torch.optim.Adam(groups, betas=tuple(self.cfg.betas)), None

    def loss(self, net: nn.Module, lq: torch.Tensor, gt: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        pix = charbonnier(net(lq), gt, self.cfg.charbonnier_eps)
        return pix, {}

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
    """Charbonnier (+ λ_TF · TF against a frozen teacher), Adam with cosine annealing, SpyNet at its own rate.

    ``pretrain`` trains a dense network (SpyNet frozen for its first iterations, as BasicSR does);
    ``finetune`` trains the pruned one. Validation every ``val.every`` iterations keeps the best weights.
    """

    def __init__(self, ctx: RunContext, name: str, model: BasicVSR, data: TrainPatches,
                 cfg: PretrainConfig | FinetuneConfig, valset: ValSet | None = None,
                 teacher: BasicVSR | None = None) -> None:
        super().__init__(ctx, model, cfg.iterations, data)
        self.name = name
        self.cfg = cfg
        self.valset = valset
        self.tf_weight = getattr(cfg, "tf_weight", 0.0) if teacher is not None else 0.0
        self.teacher = None
        if self.tf_weight > 0:
            self.teacher = teacher.to(ctx.device).eval().requires_grad_(False)
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
        if self.teacher is None:
            pix = charbonnier(net(lq), gt, self.cfg.charbonnier_eps)
            return pix, {}
        out, hidden = net(lq, return_hidden=True)
        with torch.no_grad():
            _, target = self.teacher(lq, return_hidden=True)
        pix = charbonnier(out, gt, self.cfg.charbonnier_eps)
        tf = tf_loss(hidden, target)
        return pix + self.tf_weight * tf, {"pix": pix, "tf": tf}

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
                save_model(self.model, self.best_path, {"stage": self.name, "iteration": done, "val_psnr": score},
                           overwrite=True)
        barrier(ctx.dist)

    def extra_state(self) -> dict[str, Any]:
        return {"best_psnr": self.best_psnr, "history": self.history}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.best_psnr = float(state["best_psnr"])
        self.history = [list(h) for h in state["history"]]
