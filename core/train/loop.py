"""The iteration loop every stage shares: data, precision, DDP, events, checkpoints, cancel, NaN and OOM.

A stage (``core.train.stages``) says what its loss is, which parameters train at which rate and what to do
after each step; this module does the rest identically for all of them:

- one ``control.checkpoint()`` per iteration (pause blocks, cancel → state saved, then ``Cancelled``);
- the loss terms and the cancel flag are averaged over processes in one small all-reduce, so every rank stops
  at the same iteration and a NaN on any rank stops all of them before it reaches the weights;
- the state is saved atomically every ``runtime.checkpoint_every`` iterations and at the end.
"""
from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from typing import Any, Iterator

import torch
from torch import nn
from torch.utils.data import DataLoader

from ..errors import UserError
from ..events import Cancelled, CheckpointSaved, Log, Progress, StageFinished, StageStarted
from ..data.patches import IterationSampler, TrainPatches
from ..models.basicvsr import BasicVSR
from .distributed import barrier, reduce_mean, wrap
from .runtime import RunContext, oom_advice
from .runmarker import record_output
from .state import check_total, save_state, set_rng_state, state_path


class TrainingError(UserError):
    """Training cannot go on (diverged, out of memory); the message says what to do and where the state is."""


class Stage(ABC):
    """One training stage; subclasses define the loss, the optimizer and the per-step hooks."""

    name = "stage"

    def __init__(self, ctx: RunContext, model: BasicVSR, total: int, data: TrainPatches) -> None:
        self.ctx = ctx
        self.model = model.to(ctx.device).train()
        if ctx.config.runtime.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.total = total
        self.data = data
        self.iteration = 0
        self.scaler = torch.amp.GradScaler(ctx.device.type, enabled=ctx.amp == torch.float16)
        self._net: nn.Module | None = None
        self._net_key: bool | None = None
        self.last_saved: str | None = None

    # -- what a stage defines ----------------------------------------------------------------------
    @abstractmethod
    def optimizer(self) -> tuple[torch.optim.Optimizer, Any]:
        """The optimizer and (optional) scheduler; called once, after the trainable flags are set."""

    @abstractmethod
    def loss(self, net: nn.Module, lq: torch.Tensor, gt: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The total loss and its named terms for one batch (``net`` is the DDP/compiled model)."""

    def spynet_trainable(self, iteration: int) -> bool:
        return False

    def after_backward(self) -> None:
        """Hook between backward and the optimizer step (gradients are unscaled here)."""

    def after_step(self, done: int) -> None:
        """Hook after iteration ``done`` (1-based count of finished iterations)."""

    def extra_state(self) -> dict[str, Any]:
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what ``extra_state`` saved."""

    # -- the loop ----------------------------------------------------------------------------------
    def run(self, state: dict[str, Any] | None = None) -> None:
        """Train from the start, or from ``state`` (a checkpoint of this stage), up to ``total`` iterations."""
        self._set_spynet(self.spynet_trainable(0 if state is None else state["iteration"]))
        self.opt, self.sched = self.optimizer()
        if state is not None:
            self._load(state)
        ctx, cfg = self.ctx, self.ctx.config.runtime
        ctx.emit(StageStarted(self.name, self.total, self.iteration))
        batch_per_rank = ctx.config.data.batch_size // ctx.dist.world
        loader = self._loader(batch_per_rank)
        timer = _Timer()
        for lq, gt in loader:
            it = self.iteration
            terms = self._step(lq, gt, it)
            self.iteration = it + 1
            self.after_step(self.iteration)
            spi = timer.tick()
            if self.iteration % cfg.log_every == 0 or self.iteration == self.total:
                frames = ctx.config.data.batch_size * lq.shape[1]
                ctx.emit(Progress(self.name, self.iteration, self.total, terms, self.opt.param_groups[0]["lr"],
                                  spi, spi * (self.total - self.iteration) if spi else None,
                                  frames / spi if spi else None))
            if self.iteration % cfg.checkpoint_every == 0 or self.iteration == self.total:
                self.save()
        ctx.emit(StageFinished(self.name, {"state": str(state_path(ctx.run_dir, self.name))}))

    def _loader(self, batch_per_rank: int) -> Iterator:
        d, dev = self.ctx.config.data, self.ctx.device
        sampler = IterationSampler(self.iteration, self.total, batch_per_rank, self.ctx.dist.rank,
                                   self.ctx.dist.world)
        return iter(DataLoader(self.data, batch_sampler=sampler, num_workers=d.num_workers,
                               pin_memory=dev.type == "cuda", persistent_workers=False))

    def _step(self, lq: torch.Tensor, gt: torch.Tensor, it: int) -> dict[str, float]:
        ctx = self.ctx
        cancel = _cancel_requested(ctx)
        self._set_spynet(self.spynet_trainable(it))
        net = self._wrapped()
        self.opt.zero_grad(set_to_none=True)
        try:
            lq, gt = ctx.to_float(lq), ctx.to_float(gt)
            with ctx.autocast():
                loss, terms = self.loss(net, lq, gt)
            names = ["loss", *terms]
            flat = torch.stack([loss.detach().float(), *(t.detach().float() for t in terms.values()),
                                torch.tensor(float(cancel), device=loss.device)])
            flat = reduce_mean(flat, ctx.dist).cpu().tolist()
            if flat[-1] > 0:
                self._stop_cancelled()
            if not all(math.isfinite(v) for v in flat[:-1]):
                raise TrainingError(f"{self.name}: the loss became {flat[0]} at iteration {it + 1}; stopped. "
                                    f"Last good state: {self._last_good()}. Lower the learning rate, then resume")
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.opt)
            self.after_backward()
            self.scaler.step(self.opt)
            self.scaler.update()
        except torch.cuda.OutOfMemoryError:
            raise TrainingError(f"{oom_advice(ctx.config)} ({self.name}, iteration {it + 1}; last state: "
                                f"{self._last_good()})") from None
        if self.sched is not None:
            self.sched.step()
        return dict(zip(names, flat[:-1]))

    def _stop_cancelled(self) -> None:
        self.save()
        self.ctx.emit(Log(f"{self.name}: cancelled at iteration {self.iteration}; state saved to "
                          f"{state_path(self.ctx.run_dir, self.name)}", "warning"))
        raise Cancelled()

    def _last_good(self) -> str:
        return self.last_saved or "none yet (the stage restarts from its beginning)"

    # -- trainable flags and DDP -------------------------------------------------------------------
    def _set_spynet(self, trainable: bool) -> None:
        for p in self.model.spynet.parameters():
            p.requires_grad_(trainable)

    def _wrapped(self) -> nn.Module:
        """The model as trained (DDP / compiled); rebuilt when SpyNet's trainable flag flips."""
        key = self.spynet_trainable(self.iteration)
        if self._net is None or key != self._net_key:
            net = wrap(self.model, self.ctx.dist, self.ctx.device)
            if self.ctx.config.runtime.compile:
                net = torch.compile(net)
            self._net, self._net_key = net, key
        return self._net

    # -- checkpoints -------------------------------------------------------------------------------
    def save(self) -> None:
        """Write this stage's state (rank 0) and let the other ranks wait for it."""
        ctx = self.ctx
        path = state_path(ctx.run_dir, self.name)
        if ctx.dist.is_main:
            parts = {"optimizer": self.opt.state_dict(),
                     "scheduler": None if self.sched is None else self.sched.state_dict(),
                     "scaler": self.scaler.state_dict(), "extra": self.extra_state()}
            record_output(ctx.run_dir, f"{path.parent.name}/{path.name}")
            save_state(path, self.name, self.iteration, self.total, self.model, parts)
            ctx.emit(CheckpointSaved(self.name, self.iteration, str(path)))
        self.last_saved = f"{path} (iteration {self.iteration})"
        barrier(ctx.dist)

    def _load(self, state: dict[str, Any]) -> None:
        check_total(state, self.name, self.total)
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        if self.sched is not None and state["scheduler"] is not None:
            self.sched.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.load_extra_state(state["extra"])
        set_rng_state(state["rng"])
        self.iteration = int(state["iteration"])
        self.last_saved = f"{state_path(self.ctx.run_dir, self.name)} (iteration {self.iteration})"


def _cancel_requested(ctx: RunContext) -> bool:
    """Blocks while paused; True once cancel was asked for (acted on after all ranks agree)."""
    if ctx.control is None:
        return False
    try:
        ctx.control.checkpoint()
    except Cancelled:
        return True
    return False


class _Timer:
    """Seconds per iteration, smoothed (the first iteration, with warm-up and worker start, is skipped)."""

    def __init__(self) -> None:
        self.last = time.perf_counter()
        self.avg: float | None = None
        self.count = 0

    def tick(self) -> float | None:
        now = time.perf_counter()
        dt, self.last = now - self.last, now
        self.count += 1
        if self.count > 1:
            self.avg = dt if self.avg is None else 0.9 * self.avg + 0.1 * dt
        return self.avg
